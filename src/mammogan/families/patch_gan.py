"""GANs on image patches from a latent vector: DCGAN, WGAN-GP and SNGAN (`[model] task = "dcgan"`).

The conditional and mask-to-image families extend this one. Evaluation compares samples with held-out
real patches through a feature extractor (synthetic-image evaluation); inference writes a sampled
dataset with a manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..core.logs import get_logger
from ..data.patch_dataset import load_patches, load_synthetic_patches
from ..data.samplers import PatchSampler
from ..evaluate.synthetic import check_synthetic_evaluation, evaluate_synthetic
from ..infer.synthetic import write_synthetic_dataset
from ..losses import gradient_penalty, r1_penalty, spectral_loss_per_example
from ..metrics.distribution import kid
from ..metrics.features import build_random_cnn
from ..metrics.numpy_metrics import moment_distance
from ..models.sampling import Conditions, latent_batch, to_unit_range
from ..registry import FAMILIES
from ..train.steps import Logs, take_step
from ..visual.tiles import gan_tile
from .base import GANFamily

log = get_logger("train")


def synthetic_patches(config: Config, size: int, real_count: int) -> np.ndarray | None:
    """`[dataset] synthetic_dirs` images to mix into training at `synthetic_ratio` per real image (None: real only)."""
    data = config.dataset
    if data.synthetic_ratio > 0 and not data.synthetic_dirs:
        raise config.error("dataset", "synthetic_ratio", "needs [dataset] synthetic_dirs (folders written by a GAN `infer`)")
    if not data.synthetic_dirs or data.synthetic_ratio == 0:
        if data.synthetic_dirs:
            log.info("[dataset] synthetic_ratio = 0: the %d synthetic_dirs are not used.", len(data.synthetic_dirs))
        return None
    images = load_synthetic_patches(data.synthetic_dirs, size, f"{config.path}: [dataset] synthetic_dirs")
    log.info("Training data: %d real + %d synthetic images from %d folder(s), %g synthetic per real "
             "(%.1f%% of draws).", real_count, len(images), len(data.synthetic_dirs), data.synthetic_ratio,
             100.0 * data.synthetic_ratio / (1.0 + data.synthetic_ratio))
    return images


@FAMILIES.register("dcgan")
class PatchGAN(GANFamily):
    """Unconditional synthetic patches: DCGAN, WGAN-GP (critic steps + gradient penalty) or SNGAN (hinge + SN).

    The family follows from `[train] adversarial_loss` and `[model] spectral_norm`; `wasserstein`
    adds the gradient penalty and `n_critic` critic steps per generator step.
    """

    monitor = "val/kid"

    @classmethod
    def check(cls, config: Config, command: str) -> None:
        super().check(config, command)
        if command == "evaluate":
            check_synthetic_evaluation(config)

    @classmethod
    def evaluate(cls, config: Config, output_dir: Path) -> int:
        evaluate_synthetic(config, output_dir, cls)
        return 0

    @classmethod
    def infer(cls, config: Config, output_dir: Path) -> int:
        return write_synthetic_dataset(config, output_dir, cls.inference_conditions)

    @classmethod
    def inference_conditions(cls, config: Config, generator: keras.Model) -> Conditions:
        """What `infer` feeds the trained generator besides latents: nothing, [infer] num_samples times."""
        return Conditions(config.infer.num_samples)

    @classmethod
    def evaluation_conditions(cls, config: Config, real_dir: Path) -> Conditions:
        """What `evaluate` feeds every generator arm besides latents: nothing, [eval] num_samples times."""
        return Conditions(config.eval.num_samples)

    @classmethod
    def class_labels(cls, config: Config, split_dir: Path) -> np.ndarray | None:
        """Class ids of a split's patches for per-class evaluation; None: the family has no classes."""
        return None

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        super().__init__(config, strategy)
        size = config.model.image_size
        self.train_images = load_patches(config.need("dataset", "train_dir", "training"), size)
        valid_dir = config.dataset.valid_dir
        self.valid_images = load_patches(valid_dir, size) if valid_dir else self.train_images
        synthetic = synthetic_patches(config, size, len(self.train_images))
        self.sampler = PatchSampler(self.train_images, config.dataset.augment_flips, config.train.seed, synthetic,
                                    config.dataset.synthetic_ratio)
        self.phases = [("gan", config.train.gan_steps)]
        # One fixed latent batch: its first rows are the tile, all of it feeds the validation KID.
        self.fixed_latents = latent_batch(max(64, config.train.tile_images * 4), config.model.latent_dim, config.train.seed + 1)
        self.tile_count = config.train.tile_images * 4
        self.wasserstein = config.train.adversarial_loss == "wasserstein"
        self.critic_steps = config.train.n_critic if self.wasserstein else 1
        self.gp_weight = config.train.gp_weight if self.wasserstein else 0.0

    def build(self) -> None:
        self.build_models()

    @property
    def images_per_step(self) -> int:
        return self.global_batch * self.critic_steps

    def train_dataset(self, step: int) -> tf.data.Dataset:
        return self.sampler.dataset(self.images_per_step, step * self.images_per_step)

    def real_batch(self, batch: Any) -> Any:
        """The sampler's batch as the D and G steps take it: patches in [0, 1] → the generator's tanh range."""
        return batch * 2.0 - 1.0

    def fake_like(self, real: tf.Tensor) -> tf.Tensor:
        """Generated D inputs for a batch of real ones (a mask-conditioned task generates for the batch's masks)."""
        return self.generator(self.random.normal([tf.shape(real)[0], self.config.model.latent_dim]), training=True)

    def discriminator_step(self, real: Any, step: tf.Tensor) -> tf.Tensor:
        """One D (critic) update on a per-replica part of `real_batch`; returns the D loss."""
        cfg = self.config.train
        discriminator = self.discriminator
        fake = self.fake_like(real)

        def loss() -> tuple[tf.Tensor, Logs]:
            real_view = self.d_view(real, step)
            real_logits = discriminator(real_view, training=True)[0]
            fake_logits = discriminator(self.d_view(fake, step), training=True)[0]
            self.observe_real_logits(real_logits)
            per_example = self.adversarial.discriminator(real_logits, fake_logits, cfg.label_smoothing)
            critic = lambda x: discriminator(x, training=True)[0]  # noqa: E731
            if self.gp_weight > 0:
                per_example += self.gp_weight * gradient_penalty(critic, real, fake, seed=self.random.seed())
            if cfg.r1_gamma > 0:
                per_example += 0.5 * cfg.r1_gamma * r1_penalty(critic, real_view)
            d_loss = self.average(per_example)
            return d_loss, {"d": d_loss}

        return take_step(self.d_optimizer, discriminator.trainable_variables, loss)["d"]

    def generator_step(self, real: Any, step: tf.Tensor) -> Logs:
        """One G update against D on a per-replica part of `real_batch`; returns {"g": loss, ...}."""
        generator, discriminator = self.generator, self.discriminator
        noise = self.random.normal([tf.shape(real)[0], self.config.model.latent_dim])
        spectral_weight = self.config.train.spectral_weight

        def loss() -> tuple[tf.Tensor, Logs]:
            fake = generator(noise, training=True)
            real_logits = discriminator(self.d_view(real, step, for_generator=True), training=True)[0]
            fake_logits = discriminator(self.d_view(fake, step, for_generator=True), training=True)[0]
            per_example = self.adversarial.generator(real_logits, fake_logits)
            if spectral_weight == 0:
                g_loss = self.average(per_example)
                return g_loss, {"g": g_loss}
            spectral = spectral_loss_per_example(real, fake)
            g_loss = self.average(per_example + spectral_weight * spectral)
            return g_loss, {"g": g_loss, "g_spectral": self.average(spectral)}

        return take_step(self.g_optimizer, generator.trainable_variables, loss)

    def train_step(self, phase: str) -> Callable:
        """`n_critic` D updates on consecutive parts of the batch, then one G update on the first part.

        The D and G updates are separate methods so that benchmarks/bench_gan.py can time each alone.
        """

        def step_fn(batch, step):
            real_all = self.real_batch(batch)
            per_replica = tf.shape(tf.nest.flatten(real_all)[0])[0] // self.critic_steps
            d_loss = tf.constant(0.0)
            for index in range(self.critic_steps):
                part = tf.nest.map_structure(lambda t, i=index: t[i * per_replica : (i + 1) * per_replica], real_all)
                d_loss = self.discriminator_step(part, step)
            return {"d": d_loss, **self.generator_step(tf.nest.map_structure(lambda t: t[:per_replica], real_all), step)}

        return step_fn

    def sample(self, latents: np.ndarray) -> np.ndarray:
        """Generated images in [0, 1], shape (N, H, W)."""
        return to_unit_range(self.inference_generator()(latents, training=False))

    def validate(self) -> dict[str, float]:
        if not hasattr(self, "_extractor"):
            # Untrained, seeded CNN: weight-free and offline; enough to rank epochs of one run.
            self._extractor = build_random_cnn(seed=self.config.train.seed)
            self._real_features = self._extractor.features(self.valid_images[..., None])
        fake = self.sample(self.fixed_latents)
        fake_features = self._extractor.features(fake[..., None])
        distance = kid(self._real_features, fake_features, subsets=20, subset_size=64, seed=0)
        return {"val/kid": distance.mean, "val/moment_distance": moment_distance(self.valid_images, fake),
                "val/fake_mean": float(fake.mean()), "val/fake_std": float(fake.std())}

    def real_fake_logits(self, images: tf.Tensor) -> tf.Tensor:
        """D's real/fake logits of a batch in [-1, 1] outside training (conditional tasks supply the classes)."""
        return self.discriminator(images, training=False)[0]

    def collapse_probe(self) -> dict[str, Any]:
        """Fixed-latent samples, real validation images and D's accuracy on those reals.

        A real counts as recognised when its score passes the loss's decision threshold: 0 for logits,
        0.5 for least squares, and the mean score of the samples for losses without one (wasserstein, relativistic).
        """
        fake = self.sample(self.fixed_latents)
        real = self.valid_images[:256]

        def scores(images: np.ndarray) -> np.ndarray:
            logits = self.real_fake_logits(images[..., None] * 2.0 - 1.0)
            return np.asarray(logits, dtype=np.float32).reshape(len(images), -1).mean(axis=1)

        loss = self.config.train.adversarial_loss
        threshold = {"lsgan": 0.5, "wasserstein": None, "relativistic": None}.get(loss, 0.0)
        if threshold is None:
            threshold = float(scores(fake).mean())
        return {"fake": fake, "real": real, "d_real_accuracy": float(np.mean(scores(real) > threshold))}

    def write_tile(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        gan_tile(path, f"epoch {epoch}", self.sample(self.fixed_latents[: self.tile_count]), self.valid_images, metrics)

"""Tasks: what a GAN family trains, plugged into the generic Trainer.

A task builds its models and optimizers (inside the strategy scope), supplies the training
dataset, one train-step function per phase, validation metrics, the epoch tile and the export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..data.patch_dataset import PatchSampler, load_patches, load_synthetic_patches
from ..data.sr_dataset import load_split, lr_subdir_for, training_sampler
from ..infer.model_io import latent_batch, to_unit_range
from ..losses import feature_matching_loss, gradient_penalty, pixel_loss_per_example
from ..losses.perceptual import perceptual_loss_per_example, vgg_feature_model, weights_file
from ..registry import ADVERSARIAL_LOSSES, DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from ..utils.io import atomic_write_with
from ..utils.logs import get_logger
from .ema import EMA
from .optimizers import build_optimizer, reducible_rate
from .stabilisers import AdaptiveAugment, diff_augment
from ..callbacks.tiles import crop_with_context, gan_tile, sr_epoch_title, sr_tile, tile_regions

log = get_logger("train")


def with_instance_noise(images: tf.Tensor, step: tf.Tensor, initial_std: float, total_steps: float) -> tf.Tensor:
    """Gaussian instance noise for D inputs, annealed linearly to 0 over training (keeps D from winning early)."""
    if initial_std <= 0:
        return images
    std = initial_std * tf.maximum(0.0, 1.0 - tf.cast(step, tf.float32) / total_steps)
    return images + tf.random.normal(tf.shape(images), stddev=std)


def _scale(optimizer: keras.optimizers.Optimizer, loss: tf.Tensor) -> tf.Tensor:
    """The loss scaled for mixed precision (call inside the tape so the scaling is differentiated)."""
    return optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss


def _apply(optimizer: keras.optimizers.Optimizer, tape: tf.GradientTape, scaled_loss: tf.Tensor, variables: list) -> None:
    """Apply gradients; a LossScaleOptimizer unscales them (and skips steps with Inf/NaN gradients)."""
    gradients = tape.gradient(scaled_loss, variables)
    optimizer.apply_gradients(zip(gradients, variables))


class Task:
    phases: list[tuple[str, int]]
    monitor: str
    monitor_mode: str = "min"

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        self.config = config
        self.strategy = strategy
        self.global_batch = config.train.batch_size
        if self.global_batch % strategy.num_replicas_in_sync:
            raise config.error("train", "batch_size", f"must divide by the {strategy.num_replicas_in_sync} replicas")
        self.ema: EMA | None = None
        self.ada: AdaptiveAugment | None = None
        if config.train.ada_target > 0 and not config.train.diffaugment:
            raise config.error("train", "ada_target", "ADA adapts the probability of the [train] diffaugment policies; list some")

    def start_phase(self, phase: str, first: bool) -> None:
        """Called when a phase begins (or resumes)."""

    def d_view(self, images: tf.Tensor, step: tf.Tensor, *, for_generator: bool = False) -> tf.Tensor:
        """What the discriminator sees of a real or fake batch (every family calls this before every D call).

        Small-data stabilisers live here so that each task gets them by calling one method: DiffAugment
        (with ADA's probability p) in both steps, since G must be trained through the same augmentation
        D sees; instance noise in the D step only (`for_generator=False`).
        """
        cfg = self.config.train
        if cfg.diffaugment:
            images = diff_augment(images, cfg.diffaugment, self.ada.p if self.ada is not None else 1.0)
        if for_generator:
            return images
        total_steps = float(max(1, sum(s for _, s in self.phases)))
        return with_instance_noise(images, step, cfg.instance_noise, total_steps)

    def observe_real_logits(self, real_logits: tf.Tensor) -> None:
        """Called in the discriminator step with D's raw outputs on real images: ADA accumulates sign(D(real))."""
        if self.ada is not None:
            self.ada.observe(real_logits)

    def after_step(self, phase: str) -> None:
        """Cross-replica context, after every train step: EMA update and ADA's p update."""
        if self.ema is not None:
            self.ema.update()
        if self.ada is not None:
            self.ada.update()

    def epoch_stats(self) -> dict[str, float]:
        """Training-state values logged per epoch in train_metrics.csv: the DiffAugment probability p (ADA's, or 1) and r_t."""
        if self.ada is None:
            return {"aug/p": 1.0} if self.config.train.diffaugment else {}
        return {"aug/p": float(self.ada.p.numpy()), "aug/r_t": float(self.ada.r_t.numpy())}

    def collapse_probe(self) -> dict[str, Any] | None:
        """For the Trainer's mode-collapse monitor: {"fake": (N, H, W) samples of the fixed latents in [0, 1],
        "real": (M, H, W) real validation images in [0, 1], "d_real_accuracy": float}; None: not monitored."""
        return None

    def average(self, per_example: tf.Tensor) -> tf.Tensor:
        """Per-replica mean scaled to the global batch, so summing replicas gives the global mean."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

    def learning_rate_variables(self) -> list[Any]:
        """What reduce-on-plateau and rollbacks multiply: each optimizer's rate, or its schedule's factor."""
        return [reducible_rate(optimizer) for optimizer in self.optimizers()]

    def reduce_learning_rate(self, factor: float) -> None:
        for rate in self.learning_rate_variables():
            rate.assign(rate * factor)
        log.info("  learning rates × %g", factor)

    def build_models(self, **discriminator_overrides: Any) -> None:
        """Generator, discriminator, their optimizers (built here, inside the strategy scope) and the EMA."""
        cfg = self.config
        kwargs = cfg.model.as_dict()  # every [model] key is a keyword of the builders
        self.generator = GENERATORS.get(cfg.model.generator)(**kwargs)
        self.discriminator = DISCRIMINATORS.get(cfg.model.discriminator)(**{**kwargs, **discriminator_overrides})
        self.g_optimizer = build_optimizer(cfg, cfg.train.g_learning_rate)
        self.d_optimizer = build_optimizer(cfg, cfg.train.d_learning_rate)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        if cfg.train.ema_decay > 0:
            self.ema = EMA(self.generator, cfg.train.ema_decay, lambda: GENERATORS.get(cfg.model.generator)(**kwargs))
        self.adversarial = ADVERSARIAL_LOSSES.get(cfg.train.adversarial_loss)
        if cfg.train.ada_target > 0:
            self.ada = AdaptiveAugment(cfg.train.ada_target, cfg.train.ada_interval, cfg.train.ada_speed_images,
                                       self.global_batch)

    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        return [self.g_optimizer, self.d_optimizer]

    def checkpoint_objects(self) -> dict[str, Any]:
        objects = {"generator": self.generator, "discriminator": self.discriminator,
                   "g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}
        if self.ema is not None:
            objects["ema"] = self.ema.shadow
        if self.ada is not None:
            objects["ada_p"] = self.ada.p
        for index, rate in enumerate(self.learning_rate_variables()):
            objects[f"learning_rate_{index}"] = rate  # a schedule's factor is not an optimizer variable
        return objects

    def inference_generator(self) -> keras.Model:
        return self.ema.shadow if self.ema is not None else self.generator

    def export(self, folder: Path) -> None:
        """Save the generator used for inference (EMA weights when enabled) as .keras and .weights.h5."""
        model = self.inference_generator()
        atomic_write_with(folder / "generator.keras", model.save)  # a kill mid-save never leaves half a model
        atomic_write_with(folder / "generator.weights.h5", model.save_weights)
        atomic_write_with(folder / "discriminator.weights.h5", self.discriminator.save_weights)


# Phase-2 generator loss terms and their default weights.
SR_LOSS_TERMS = {"pixel": 1.0, "adversarial": 1e-3, "feature_matching": 0.0, "perceptual": 0.0}


@TASKS.register("srgan")
class SRGANTask(Task):
    """SRGAN: phase 1 pixel-loss pre-training, phase 2 adversarial fine-tuning from the phase-1 weights."""

    monitor = "val/psnr_gain"
    monitor_mode = "max"

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        super().__init__(config, strategy)
        if config.dataset.synthetic_dirs:
            raise config.error("dataset", "synthetic_dirs", "the srgan task does not mix synthetic images (GAN samples have "
                               "no LR partners or lesion masks); only synthetic-image tasks (dcgan) read them")
        self.scale = config.model.scale
        train_dir = config.need("dataset", "train_dir", "training")
        valid_dir = config.need("dataset", "valid_dir", "validation")
        lr_subdir = lr_subdir_for(config)
        self.valid_split = load_split(valid_dir, self.scale, lr_subdir, config.dataset.data_range)
        self.sampler = training_sampler(config, train_dir)  # [dataset] storage: in RAM or streamed from TFRecords
        self.phases = [("pretrain", config.train.pretrain_steps), ("gan", config.train.gan_steps)]
        unknown = set(config.train.loss_weights) - set(SR_LOSS_TERMS)
        if unknown:
            raise config.error("train", "loss_weights", f"unknown term(s) {sorted(unknown)}; the SR generator loss has {list(SR_LOSS_TERMS)}")
        self.loss_weights = {**SR_LOSS_TERMS, **config.train.loss_weights}
        self.regions = tile_regions(self.valid_split, config.train.tile_images)
        # The validation images never change, so their bicubic PSNR is computed once.
        from ..evaluate.comparison import bicubic_upscale, psnr_np

        self.bicubic_psnr = [psnr_np(hr, np.clip(bicubic_upscale(lr, self.scale), 0, 1), 1.0)
                             for lr, hr in zip(self.valid_split.lr, self.valid_split.hr)]

    def build(self) -> None:
        self.build_models()
        self.pixel_loss = LOSSES.get(self.config.train.pixel_loss)  # resolved outside the traced step
        if self.loss_weights["perceptual"] > 0:
            setting = self.config.train.perceptual_weights
            if not setting:
                raise self.config.error("train", "loss_weights", "a perceptual weight needs [train] perceptual_weights "
                                        "(\"imagenet\" from the local Keras cache, or a VGG19 weights file)")
            self.vgg_features = vgg_feature_model(weights_file(setting, self.config.path.parent))

    def start_phase(self, phase: str, first: bool) -> None:
        if phase == "gan" and first and self.ema is not None:
            self.ema.reset()  # phase 2 starts from the pre-trained weights

    def train_dataset(self, step: int) -> tf.data.Dataset:
        return self.sampler.dataset(self.global_batch, step * self.global_batch)

    def _pixel(self, hr: tf.Tensor, sr: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        cfg = self.config.train
        return pixel_loss_per_example(self.pixel_loss, hr, sr, mask, cfg.lesion_weight)

    def train_step(self, phase: str) -> Callable:
        cfg = self.config.train
        weights = self.loss_weights
        generator, discriminator = self.generator, self.discriminator

        def pretrain(batch, step):
            lr, hr, mask = batch
            with tf.GradientTape() as tape:
                sr = generator(lr, training=True)
                loss = self.average(self._pixel(hr, sr, mask))
                scaled = _scale(self.g_optimizer, loss)
            _apply(self.g_optimizer, tape, scaled, generator.trainable_variables)
            return {"pixel": loss}

        def adversarial(batch, step):
            lr, hr, mask = batch
            sr = generator(lr, training=True)
            with tf.GradientTape() as tape:
                real_logits = discriminator(self.d_view(hr, step), training=True)[0]
                fake_logits = discriminator(self.d_view(sr, step), training=True)[0]
                self.observe_real_logits(real_logits)
                d_loss = self.average(self.adversarial.discriminator(real_logits, fake_logits, cfg.label_smoothing))
                scaled = _scale(self.d_optimizer, d_loss)
            _apply(self.d_optimizer, tape, scaled, discriminator.trainable_variables)
            with tf.GradientTape() as tape:
                sr = generator(lr, training=True)
                real_out = discriminator(self.d_view(hr, step, for_generator=True), training=False)
                fake_out = discriminator(self.d_view(sr, step, for_generator=True), training=False)
                pixel = self._pixel(hr, sr, mask)
                adv = self.adversarial.generator(real_out[0], fake_out[0])
                per_example = weights["pixel"] * pixel + weights["adversarial"] * adv
                if weights["feature_matching"] > 0:
                    per_example += weights["feature_matching"] * feature_matching_loss(real_out[1:], fake_out[1:])
                if weights["perceptual"] > 0:
                    per_example += weights["perceptual"] * perceptual_loss_per_example(self.vgg_features, hr, sr)
                g_loss = self.average(per_example)
                scaled = _scale(self.g_optimizer, g_loss)
            _apply(self.g_optimizer, tape, scaled, generator.trainable_variables)
            return {"d": d_loss, "g": g_loss, "pixel": self.average(pixel), "adversarial": self.average(adv)}

        return pretrain if phase == "pretrain" else adversarial

    def super_resolve(self, lr: np.ndarray) -> np.ndarray:
        output = self.inference_generator()(lr[None, ..., None], training=False)
        return np.clip(np.asarray(output, dtype=np.float32)[0, ..., 0], 0.0, 1.0)

    def validate(self) -> dict[str, float]:
        from ..evaluate.comparison import psnr_np, ssim_np

        outputs = [self.super_resolve(lr) for lr in self.valid_split.lr]
        psnr = [psnr_np(hr, sr, 1.0) for hr, sr in zip(self.valid_split.hr, outputs)]
        ssim = [ssim_np(hr, sr, 1.0) for hr, sr in zip(self.valid_split.hr, outputs)]
        gain = np.subtract(psnr, self.bicubic_psnr)
        return {"val/psnr": float(np.mean(psnr)), "val/ssim": float(np.mean(ssim)), "val/psnr_gain": float(np.mean(gain))}

    def write_tile(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        sr_tile(path, sr_epoch_title(epoch, metrics), self.valid_split, self.regions,
                lambda region: crop_with_context(self.valid_split, region, self.super_resolve))


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


@TASKS.register("dcgan")
class PatchGANTask(Task):
    """Unconditional synthetic patches: DCGAN, WGAN-GP (critic steps + gradient penalty) or SNGAN (hinge + SN).

    The family follows from `[train] adversarial_loss` and `[model] spectral_norm`; `wasserstein`
    adds the gradient penalty and `n_critic` critic steps per generator step.
    """

    monitor = "val/kid"

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
        # WGAN-GP critics must not use batch norm: the penalty is per example.
        normalization = self.config.model.d_normalization
        if normalization == "auto":
            normalization = "layer" if self.wasserstein else "batch"
        elif normalization == "batch" and self.wasserstein:
            raise self.config.error("model", "d_normalization", "a Wasserstein critic's gradient penalty is per example; "
                                    "batch norm couples the examples. Use \"layer\", \"none\" or \"auto\"")
        self.build_models(normalization=normalization)

    def train_dataset(self, step: int) -> tf.data.Dataset:
        per_step = self.global_batch * self.critic_steps
        return self.sampler.dataset(per_step, step * per_step)

    def real_batch(self, batch: Any) -> Any:
        """The sampler's batch as the D and G steps take it: patches in [0, 1] → the generator's tanh range."""
        return batch * 2.0 - 1.0

    def fake_like(self, real: tf.Tensor) -> tf.Tensor:
        """Generated D inputs for a batch of real ones (a mask-conditioned task generates for the batch's masks)."""
        return self.generator(tf.random.normal([tf.shape(real)[0], self.config.model.latent_dim]), training=True)

    def discriminator_step(self, real: Any, step: tf.Tensor) -> tf.Tensor:
        """One D (critic) update on a per-replica part of `real_batch`; returns the D loss."""
        cfg = self.config.train
        discriminator = self.discriminator
        fake = self.fake_like(real)
        with tf.GradientTape() as tape:
            real_logits = discriminator(self.d_view(real, step), training=True)[0]
            fake_logits = discriminator(self.d_view(fake, step), training=True)[0]
            self.observe_real_logits(real_logits)
            per_example = self.adversarial.discriminator(real_logits, fake_logits, cfg.label_smoothing)
            if self.gp_weight > 0:
                per_example += self.gp_weight * gradient_penalty(lambda x: discriminator(x, training=True)[0], real, fake)
            d_loss = self.average(per_example)
            scaled = _scale(self.d_optimizer, d_loss)
        _apply(self.d_optimizer, tape, scaled, discriminator.trainable_variables)
        return d_loss

    def generator_step(self, real: Any, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """One G update against D on a per-replica part of `real_batch`; returns {"g": loss, ...}."""
        generator, discriminator = self.generator, self.discriminator
        noise = tf.random.normal([tf.shape(real)[0], self.config.model.latent_dim])
        with tf.GradientTape() as tape:
            fake = generator(noise, training=True)
            real_logits = discriminator(self.d_view(real, step, for_generator=True), training=True)[0]
            fake_logits = discriminator(self.d_view(fake, step, for_generator=True), training=True)[0]
            g_loss = self.average(self.adversarial.generator(real_logits, fake_logits))
            scaled = _scale(self.g_optimizer, g_loss)
        _apply(self.g_optimizer, tape, scaled, generator.trainable_variables)
        return {"g": g_loss}

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
        from ..evaluate.comparison import moment_distance
        from ..metrics.distribution import kid
        from ..metrics.features import build_random_cnn

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
        gan_tile(path, epoch, self.sample(self.fixed_latents[: self.tile_count]), self.valid_images, metrics)

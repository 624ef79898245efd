"""Class-conditional synthetic patches (ACGAN auxiliary head and/or projection discriminator).

The patch loop, validation and export are PatchGAN's; this family adds class ids read from the
splits' metadata.csv, a class-balanced sampler, the auxiliary class loss and per-class tiles.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..data.labels import split_labels
from ..data.samplers import ClassBalancedSampler
from ..losses import gradient_penalty
from ..losses.adversarial import auxiliary_class_loss
from ..metrics.numpy_metrics import moment_distance
from ..models.sampling import Conditions, balanced_labels, class_count, latent_batch, to_unit_range
from ..registry import FAMILIES
from ..train.steps import Logs, take_step
from ..visual.tiles import gan_tile
from .patch_gan import PatchGAN

TILE_COLUMNS = 8  # gan_tile's row length: one row per class


@FAMILIES.register("conditional")
class ConditionalGAN(PatchGAN):
    """Class-conditional DCGAN/WGAN-GP/SNGAN: D judges (image, class); G generates a requested class."""

    @classmethod
    def inference_conditions(cls, config: Config, generator: keras.Model) -> Conditions:
        """[infer] num_samples images per [model] classes entry, which must match the trained generator's classes."""
        classes = class_count(generator)
        if len(config.model.classes) != classes:
            raise config.error("model", "classes", f"the trained generator has {classes} classes; "
                               f"list the {classes} names it was trained with, in order")
        labels = np.repeat(np.arange(classes, dtype=np.int32), config.infer.num_samples)
        return Conditions(len(labels), labels=labels, columns=[{"class": config.model.classes[label]} for label in labels])

    @classmethod
    def evaluation_conditions(cls, config: Config, real_dir: Path) -> Conditions:
        """[eval] num_samples class ids spread evenly over the classes (0, 1, ..., 0, 1, ...)."""
        return Conditions(config.eval.num_samples, labels=balanced_labels(config.eval.num_samples, len(config.model.classes)))

    @classmethod
    def class_labels(cls, config: Config, split_dir: Path) -> np.ndarray:
        return split_labels(split_dir, config.model.classes, config.dataset.class_column, "[model] classes")

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        self.classes = list(config.model.classes)
        if len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise config.error("model", "classes", f"a conditional GAN needs at least two distinct class names, got {self.classes}")
        weights = list(config.train.class_weights) or [1.0] * len(self.classes)
        if len(weights) != len(self.classes) or sum(weights) <= 0:
            raise config.error("train", "class_weights", f"expected {len(self.classes)} non-negative weights (one per "
                               f"[model] classes entry, not all 0), got {weights}")
        super().__init__(config, strategy)
        where = f"{config.path}: [model] classes"
        train_dir = config.dataset.train_dir
        self.train_labels = split_labels(train_dir, self.classes, config.dataset.class_column, where)
        valid_dir = config.dataset.valid_dir
        self.valid_labels = split_labels(valid_dir, self.classes, config.dataset.class_column, where) if valid_dir else self.train_labels
        empty = [name for c, name in enumerate(self.classes) if weights[c] > 0 and not np.any(self.train_labels == c)]
        if empty:
            raise config.error("model", "classes", f"{empty} has no training patch in {train_dir} "
                               f"({config.dataset.class_column} of {train_dir.parent / 'metadata.csv'})")
        self.sampler = ClassBalancedSampler(self.train_images, self.train_labels, weights,
                                            config.dataset.augment_flips, config.train.seed)
        self.fixed_labels = balanced_labels(len(self.fixed_latents), len(self.classes))
        # The tile: one row of TILE_COLUMNS fixed latents per class.
        self.tile_latents = latent_batch(TILE_COLUMNS * len(self.classes), config.model.latent_dim, config.train.seed + 2)
        self.tile_labels = np.repeat(np.arange(len(self.classes), dtype=np.int32), TILE_COLUMNS)
        self.class_weight = config.train.class_loss_weight

    def real_batch(self, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        """(patches in the generator's tanh range, class ids as an (N, 1) column)."""
        images, labels = batch
        return images * 2.0 - 1.0, labels[:, None]

    def discriminator_step(self, real: tuple[tf.Tensor, tf.Tensor], step: tf.Tensor) -> tf.Tensor:
        """One D update on (image, class) pairs; the fakes are of the batch's classes."""
        cfg = self.config.train
        generator, discriminator = self.generator, self.discriminator
        real, labels = real
        weight = self.class_weight
        fake = generator([self.random.normal([tf.shape(real)[0], self.config.model.latent_dim]), labels], training=True)

        def loss() -> tuple[tf.Tensor, Logs]:
            real_out = discriminator([self.d_view(real, step), labels], training=True)
            fake_out = discriminator([self.d_view(fake, step), labels], training=True)
            self.observe_real_logits(real_out[0])
            per_example = self.adversarial.discriminator(real_out[0], fake_out[0], cfg.label_smoothing)
            if weight > 0:
                per_example += weight * (auxiliary_class_loss(real_out[1], labels) + auxiliary_class_loss(fake_out[1], labels))
            if self.gp_weight > 0:
                critic = lambda x: discriminator([x, labels], training=True)[0]  # noqa: E731
                per_example += self.gp_weight * gradient_penalty(critic, real, fake, seed=self.random.seed())
            d_loss = self.average(per_example)
            return d_loss, {"d": d_loss}

        return take_step(self.d_optimizer, discriminator.trainable_variables, loss)["d"]

    def generator_step(self, real: tuple[tf.Tensor, tf.Tensor], step: tf.Tensor) -> Logs:
        """One G update: adversarial loss plus the auxiliary class loss of the fakes."""
        generator, discriminator = self.generator, self.discriminator
        real, labels = real
        weight = self.class_weight

        def loss() -> tuple[tf.Tensor, Logs]:
            fake = generator([self.random.normal([tf.shape(real)[0], self.config.model.latent_dim]), labels], training=True)
            real_out = discriminator([self.d_view(real, step, for_generator=True), labels], training=True)
            fake_out = discriminator([self.d_view(fake, step, for_generator=True), labels], training=True)
            class_loss = auxiliary_class_loss(fake_out[1], labels)
            per_example = self.adversarial.generator(real_out[0], fake_out[0])
            if weight > 0:
                per_example += weight * class_loss
            g_loss = self.average(per_example)
            return g_loss, {"g": g_loss, "g_class": self.average(class_loss)}

        return take_step(self.g_optimizer, generator.trainable_variables, loss)

    def sample(self, latents: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Generated images in [0, 1], (N, H, W); classes default to the balanced fixed labels."""
        labels = self.fixed_labels[: len(latents)] if labels is None else labels
        return to_unit_range(self.inference_generator()([latents, labels[:, None]], training=False))

    def real_fake_logits(self, images: tf.Tensor) -> tf.Tensor:
        """Logits under each image's most likely class (D's class head), for the collapse monitor."""
        guess = tf.zeros([tf.shape(images)[0], 1], tf.int32)
        class_logits = self.discriminator([images, guess], training=False)[1]
        predicted = tf.argmax(class_logits, axis=-1, output_type=tf.int32)[:, None]
        return self.discriminator([images, predicted], training=False)[0]

    def validate(self) -> dict[str, float]:
        """PatchGAN's KID on the balanced fixed batch, plus per class: D's class accuracy on fakes and moment distance."""
        metrics = super().validate()
        fake = self.sample(self.fixed_latents)
        class_logits = self.discriminator([fake[..., None] * 2.0 - 1.0, self.fixed_labels[:, None]], training=False)[1]
        predicted = np.argmax(np.asarray(class_logits), axis=-1)
        metrics["val/fake_class_accuracy"] = float(np.mean(predicted == self.fixed_labels))
        for c, name in enumerate(self.classes):
            real = self.valid_images[self.valid_labels == c]
            if len(real):
                metrics[f"val/{name}/moment_distance"] = moment_distance(real, fake[self.fixed_labels == c])
        return metrics

    def write_tile(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        real = np.concatenate([self.valid_images[self.valid_labels == c][:TILE_COLUMNS // len(self.classes) or 1]
                               for c in range(len(self.classes))])
        gan_tile(path, f"epoch {epoch}", self.sample(self.tile_latents, self.tile_labels), real,
                 {k: v for k, v in metrics.items() if k.count("/") < 2}, row_labels=self.classes)

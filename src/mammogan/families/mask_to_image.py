"""Mask-to-image GAN (pix2pix): generate the mammogram patch that goes with a lesion mask.

Every synthetic image then comes with a pixel-exact mask for segmentation training. The patch loop,
KID validation, collapse probe and export are PatchGAN's; this family trains on (image, mask)
pairs of the patch splits (healthy patches with empty masks included), adds the pixel
reconstruction and mode-seeking terms, and shows masks | generated | real in its tiles.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..data.mask_prior import inference_masks
from ..data.patch_dataset import load_masks
from ..data.samplers import PatchSampler
from ..losses import feature_matching_loss, pixel_loss_per_example
from ..models.sampling import Conditions, latent_batch, to_unit_range
from ..registry import FAMILIES, LOSSES
from ..train.steps import Logs, take_step
from ..visual.tiles import gan_tile
from .patch_gan import PatchGAN

TILE_COLUMNS = 8  # gan_tile's row length
LOSS_TERMS = ("pixel", "adversarial", "feature_matching", "mode_seeking")


def mode_seeking_loss(fake_a: tf.Tensor, fake_b: tf.Tensor, latent_a: tf.Tensor, latent_b: tf.Tensor) -> tf.Tensor:
    """Per example 1 / (|G(m, z_a) − G(m, z_b)| / |z_a − z_b|) (MSGAN, Mao et al. 2019).

    The pixel term alone is minimised by ignoring the latent (one image per mask, one flat patch for
    every empty mask); this term rewards images that move when the latent moves.
    """
    images = tf.reduce_mean(tf.abs(tf.cast(fake_a, tf.float32) - tf.cast(fake_b, tf.float32)), axis=[1, 2, 3])
    latents = tf.reduce_mean(tf.abs(latent_a - latent_b), axis=1)
    return 1.0 / (images / latents + 1e-5)


@FAMILIES.register("mask_to_image")
class MaskToImageGAN(PatchGAN):
    """pix2pix: G(mask, z) → image; a PatchGAN D judges the (mask, image) pair; G also pays `pixel` × pixel loss to
    the real image and, with a `mode_seeking` weight, for images that do not change with z.

    The fixed validation batch cycles the validation masks with fixed latents, so its first rows are
    the validation images' own masks: the same batch gives KID, the L1 to the real images and the
    collapse probe's real/fake logits.
    """

    @classmethod
    def inference_conditions(cls, config: Config, generator: keras.Model) -> Conditions:
        """[infer] num_samples masks from the mask prior or real masks ([infer] mask_source), each with its source."""
        masks, sources = inference_masks(config, config.infer.num_samples)
        return Conditions(len(masks), masks=masks, columns=[{"mask_source": source} for source in sources])

    @classmethod
    def evaluation_conditions(cls, config: Config, real_dir: Path) -> Conditions:
        """The evaluated split's own masks, cycled: generated and real sides show the same lesions."""
        count = config.eval.num_samples
        split_masks = load_masks(real_dir, config.model.image_size, paired=True)[0]
        return Conditions(count, masks=split_masks[np.arange(count) % len(split_masks)])

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        unknown = set(config.train.loss_weights) - set(LOSS_TERMS)
        if unknown:
            raise config.error("train", "loss_weights", f"unknown term(s) {sorted(unknown)}; the mask_to_image generator "
                               f"loss has {list(LOSS_TERMS)}")
        super().__init__(config, strategy)
        cfg, size = config, config.model.image_size
        self.loss_weights = {term: config.train.loss_weights.get(term, 0.0) for term in LOSS_TERMS}
        train_masks = load_masks(cfg.dataset.train_dir, size, paired=True)[0]
        self.valid_masks = load_masks(cfg.dataset.valid_dir, size, paired=True)[0] if cfg.dataset.valid_dir else train_masks
        # Image and mask stacked as channels: one flip/rotation moves both.
        self.sampler = PatchSampler(np.stack([self.train_images, train_masks], axis=-1), cfg.dataset.augment_flips,
                                    cfg.train.seed)
        count = max(len(self.fixed_latents), min(len(self.valid_images), 256))
        self.fixed_latents = latent_batch(count, cfg.model.latent_dim, cfg.train.seed + 1)
        cycle = np.arange(count) % len(self.valid_images)
        self.fixed_masks, self.fixed_real = self.valid_masks[cycle], self.valid_images[cycle]
        # The tile: validation masks with the most lesion first, each under two fixed latents.
        order = np.argsort(-self.valid_masks.sum(axis=(1, 2)), kind="stable")[:TILE_COLUMNS]
        self.tile_masks, self.tile_real = self.valid_masks[order], self.valid_images[order]
        self.tile_latents = latent_batch(2 * len(order), cfg.model.latent_dim, cfg.train.seed + 2)

    def build(self) -> None:
        super().build()
        if len(self.generator.inputs) != 2 or len(self.generator.inputs[0].shape) != 4:
            raise self.config.error("model", "generator", "the mask_to_image task needs a generator of [mask, latent], "
                                    "e.g. \"pix2pix_unet\"")
        if self.discriminator.inputs[0].shape[-1] != 2:
            raise self.config.error("model", "discriminator", "the mask_to_image task needs a discriminator of the "
                                    "(mask, image) pair as two channels, e.g. \"patchgan\"")
        self.pixel_loss = LOSSES.get(self.config.train.pixel_loss)  # resolved outside the traced step

    def real_batch(self, batch: tf.Tensor) -> tf.Tensor:
        """The sampler's (image, mask) channels as (mask, patch in the generator's tanh range) pairs.

        D sees each pair as one two-channel input, so PatchGAN's D step applies unchanged (WGAN-GP
        interpolates between pairs with the same mask) and DiffAugment moves mask and image together.
        """
        return tf.concat([batch[..., 1:], batch[..., :1] * 2.0 - 1.0], -1)

    def fake_like(self, real: tf.Tensor) -> tf.Tensor:
        """(mask, generated patch) pairs for the masks of a batch of real pairs."""
        mask = real[..., :1]
        latent = self.random.normal([tf.shape(real)[0], self.config.model.latent_dim])
        return tf.concat([mask, self.generator([mask, latent], training=True)], -1)

    def generator_step(self, pairs: tf.Tensor, step: tf.Tensor) -> Logs:
        """One G update: adversarial + pixel (+ feature matching, mode seeking) terms by `[train] loss_weights`."""
        cfg, weights = self.config.train, self.loss_weights
        generator, discriminator = self.generator, self.discriminator
        mask, real = pairs[..., :1], pairs[..., 1:]
        latent = self.random.normal([tf.shape(real)[0], self.config.model.latent_dim])

        def loss() -> tuple[tf.Tensor, Logs]:
            fake = generator([mask, latent], training=True)
            real_out = discriminator(self.d_view(pairs, step, for_generator=True), training=True)
            fake_out = discriminator(self.d_view(tf.concat([mask, fake], -1), step, for_generator=True), training=True)
            adversarial = self.adversarial.generator(real_out[0], fake_out[0])
            pixel = pixel_loss_per_example(self.pixel_loss, real, fake, mask, cfg.lesion_weight)
            per_example = weights["adversarial"] * adversarial + weights["pixel"] * pixel
            if weights["feature_matching"] > 0:
                per_example += weights["feature_matching"] * feature_matching_loss(real_out[1:], fake_out[1:])
            if weights["mode_seeking"] > 0:
                other = self.random.normal(tf.shape(latent))
                per_example += weights["mode_seeking"] * mode_seeking_loss(fake, generator([mask, other], training=True), latent, other)
            g_loss = self.average(per_example)
            return g_loss, {"g": g_loss, "pixel": self.average(pixel), "adversarial": self.average(adversarial)}

        return take_step(self.g_optimizer, generator.trainable_variables, loss)

    def sample(self, latents: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
        """Generated images in [0, 1], (N, H, W); masks default to the fixed validation batch's."""
        masks = self.fixed_masks[: len(latents)] if masks is None else masks
        return to_unit_range(self.inference_generator()([masks[..., None], latents], training=False))

    def validate(self) -> dict[str, float]:
        """PatchGAN's KID and moments on the fixed batch, plus its mean L1 to the real images of the same masks."""
        metrics = super().validate()
        fake = self.sample(self.fixed_latents)
        metrics["val/l1"] = float(np.mean(np.abs(fake - self.fixed_real)))
        return metrics

    def real_fake_logits(self, images: tf.Tensor) -> tf.Tensor:
        """D's logits for the collapse probe's images in [-1, 1]: the first rows of the fixed batch (fakes) or the
        validation images, whose masks are the same first rows of `fixed_masks`."""
        masks = self.fixed_masks[: images.shape[0], ..., None]
        return self.discriminator(tf.concat([tf.constant(masks), tf.cast(images, tf.float32)], -1), training=False)[0]

    def write_tile(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        """Rows: the fixed masks, their samples under two latents; below, the real patches of those masks."""
        count = len(self.tile_masks)
        generated = self.sample(self.tile_latents, np.concatenate([self.tile_masks, self.tile_masks]))
        rows = [self.tile_masks, generated[:count], generated[count:]]
        padded = [np.concatenate([row, np.zeros((TILE_COLUMNS - count, *row.shape[1:]), np.float32)]) for row in rows]
        gan_tile(path, f"epoch {epoch}", np.concatenate(padded), self.tile_real, metrics,
                 row_labels=["mask", "generated z1", "generated z2"])

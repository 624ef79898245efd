"""SRGAN (Ledig et al. 2017): phase 1 pixel-loss pre-training, phase 2 adversarial fine-tuning.

Evaluation compares the generator with bicubic interpolation on the test split (whole images and
lesion ROIs); inference super-resolves a folder of full-field images tile by tile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..data.samplers import training_sampler
from ..data.sr_dataset import load_split, lr_subdir_for
from ..evaluate.sr import evaluate_super_resolution
from ..infer.super_resolution import super_resolve_folder
from ..losses import feature_matching_loss, pixel_loss_per_example
from ..losses.perceptual import perceptual_loss_per_example, vgg_feature_model, weights_file
from ..models.io import load_model
from ..metrics.numpy_metrics import bicubic_upscale, psnr_np, ssim_np
from ..registry import FAMILIES, LOSSES
from ..train.steps import take_step
from ..visual.tiles import crop_with_context, sr_epoch_title, sr_tile, tile_regions
from .base import GANFamily

# Phase-2 generator loss terms and their default weights.
SR_LOSS_TERMS = {"pixel": 1.0, "adversarial": 1e-3, "feature_matching": 0.0, "perceptual": 0.0}


@FAMILIES.register("srgan")
class SRGAN(GANFamily):
    """SRGAN: phase 1 pixel-loss pre-training, phase 2 adversarial fine-tuning from the phase-1 weights."""

    monitor = "val/psnr_gain"
    monitor_mode = "max"

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        super().__init__(config, strategy)
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
        self.bicubic_psnr = [psnr_np(hr, np.clip(bicubic_upscale(lr, self.scale), 0, 1), 1.0)
                             for lr, hr in zip(self.valid_split.lr, self.valid_split.hr)]

    @classmethod
    def evaluate(cls, config: Config, output_dir: Path) -> int:
        return evaluate_super_resolution(config, output_dir)

    @classmethod
    def infer(cls, config: Config, output_dir: Path) -> int:
        return super_resolve_folder(config, output_dir)

    def build(self) -> None:
        self.build_models(with_discriminator=self.config.train.gan_steps > 0)
        self.pixel_loss = LOSSES.get(self.config.train.pixel_loss)  # resolved outside the traced step
        if self.config.train.pretrained_generator is not None:
            self._start_from(self.config.train.pretrained_generator)
        if self.loss_weights["perceptual"] > 0:
            setting = self.config.train.perceptual_weights
            if not setting:
                raise self.config.error("train", "loss_weights", "a perceptual weight needs [train] perceptual_weights "
                                        "(\"imagenet\" from the local Keras cache, or a VGG19 weights file)")
            self.vgg_features = vgg_feature_model(weights_file(setting, self.config.path.parent))

    def _start_from(self, path: Path) -> None:
        """Copy a trained generator's weights into this run's (a resumed run's checkpoint then overrides them)."""
        source = load_model(path)
        shapes = [tuple(w.shape) for w in source.weights]
        expected = [tuple(w.shape) for w in self.generator.weights]
        if shapes != expected:
            raise self.config.error("train", "pretrained_generator", f"{path} is a different network ({len(shapes)} weight "
                                    f"tensors, {source.count_params():,} parameters) from [model] generator = "
                                    f"{self.config.model.generator!r} as configured ({len(expected)} tensors, "
                                    f"{self.generator.count_params():,} parameters); use the [model] keys it was trained with")
        self.generator.set_weights(source.get_weights())
        if self.ema is not None:
            self.ema.reset()

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

            def pixel_loss():
                loss = self.average(self._pixel(hr, generator(lr, training=True), mask))
                return loss, {"pixel": loss}

            return take_step(self.g_optimizer, generator.trainable_variables, pixel_loss)

        def adversarial(batch, step):
            lr, hr, mask = batch
            sr = generator(lr, training=True)

            def discriminator_loss():
                real_logits = discriminator(self.d_view(hr, step), training=True)[0]
                fake_logits = discriminator(self.d_view(sr, step), training=True)[0]
                self.observe_real_logits(real_logits)
                d_loss = self.average(self.adversarial.discriminator(real_logits, fake_logits, cfg.label_smoothing))
                return d_loss, {"d": d_loss}

            def generator_loss():
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
                return g_loss, {"g": g_loss, "pixel": self.average(pixel), "adversarial": self.average(adv)}

            logs = take_step(self.d_optimizer, discriminator.trainable_variables, discriminator_loss)
            return {**logs, **take_step(self.g_optimizer, generator.trainable_variables, generator_loss)}

        return pretrain if phase == "pretrain" else adversarial

    def super_resolve(self, lr: np.ndarray) -> np.ndarray:
        output = self.inference_generator()(lr[None, ..., None], training=False)
        return np.clip(np.asarray(output, dtype=np.float32)[0, ..., 0], 0.0, 1.0)

    def validate(self) -> dict[str, float]:
        outputs = [self.super_resolve(lr) for lr in self.valid_split.lr]
        psnr = [psnr_np(hr, sr, 1.0) for hr, sr in zip(self.valid_split.hr, outputs)]
        ssim = [ssim_np(hr, sr, 1.0) for hr, sr in zip(self.valid_split.hr, outputs)]
        gain = np.subtract(psnr, self.bicubic_psnr)
        return {"val/psnr": float(np.mean(psnr)), "val/ssim": float(np.mean(ssim)), "val/psnr_gain": float(np.mean(gain))}

    def write_tile(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        sr_tile(path, sr_epoch_title(epoch, metrics), self.valid_split, self.regions,
                lambda region: crop_with_context(self.valid_split, region, self.super_resolve))

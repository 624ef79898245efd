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
from ..data.patch_dataset import load_patches, load_synthetic_patches
from ..data.samplers import PatchSampler, training_sampler
from ..data.sr_dataset import load_split, lr_subdir_for
from ..models.sampling import latent_batch, to_unit_range
from ..losses import feature_matching_loss, gradient_penalty, pixel_loss_per_example
from ..losses.perceptual import perceptual_loss_per_example, vgg_feature_model, weights_file
from ..registry import ADVERSARIAL_LOSSES, DISCRIMINATORS, GENERATORS, LOSSES, FAMILIES
from ..core.io import atomic_write_with
from ..core.logs import get_logger
from ..train.ema import EMA
from ..train.optimizers import build_optimizer, reducible_rate
from ..train.stabilisers import AdaptiveAugment, diff_augment
from ..visual.tiles import crop_with_context, gan_tile, sr_epoch_title, sr_tile, tile_regions

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

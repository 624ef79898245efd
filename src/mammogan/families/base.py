"""What every model family is, and what the GAN families share.

A family is the registered class behind `[model] task`: `mammogan train`, `evaluate` and `infer` ask
the FAMILIES registry for it and call its `train`, `evaluate` and `infer` class methods. Studies
(utility, domain_extractor) implement those directly. GAN families subclass `GANFamily`: the generic
Trainer builds one per run and drives its phases, steps, validation, tiles and export.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from ..config.loader import Config, network_misfit
from ..errors import ConfigError
from ..core.io import atomic_write_with
from ..core.logs import get_logger
from ..registry import ADVERSARIAL_LOSSES, DISCRIMINATORS, GENERATORS
from ..train.ema import EMA
from ..train.optimizers import build_optimizer, reducible_rate
from ..train.randomness import StepRandom
from ..train.stabilisers import AdaptiveAugment, diff_augment, with_instance_noise
from ..train.trainer import Trainer
from ..visual.report import write_command_report

log = get_logger("train")


class Family:
    """The three commands of one `[model] task`; each returns the process exit code."""

    infers = True  # False for studies, which train classifiers: `infer` refuses them before writing anything
    trained_by_loop = False  # True for GAN families, which the generic Trainer drives step by step

    @classmethod
    def check(cls, config: Config, command: str) -> None:
        """Refuse a config that `command` ("train", "evaluate", "infer") cannot run, before anything is written."""

    @classmethod
    def train(cls, config: Config, resume: bool) -> int:
        raise NotImplementedError

    @classmethod
    def evaluate(cls, config: Config, output_dir: Path) -> int:
        raise NotImplementedError

    @classmethod
    def infer(cls, config: Config, output_dir: Path) -> int:
        raise NotImplementedError


class Study(Family):
    """A family that trains classifiers instead of a generator: `run` is its training, `summarise` its evaluation."""

    infers = False

    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def train(cls, config: Config, resume: bool) -> int:
        code = cls(config).run()
        log.info("Report: %s", write_command_report(config, config.train.output_dir, "study"))
        return code

    @classmethod
    def evaluate(cls, config: Config, output_dir: Path) -> int:
        return cls(config).summarise()

    def run(self) -> int:
        raise NotImplementedError

    def summarise(self) -> int:
        raise NotImplementedError


class GANFamily(Family):
    """A family trained by the generic Trainer loop: one instance per run, built inside the strategy scope.

    Subclasses set `phases` [(name, steps)], `monitor`/`monitor_mode` (the validation value that picks
    models/best) and implement `build`, `train_dataset`, `train_step`, `validate`, `write_tile`.
    """

    phases: list[tuple[str, int]]
    monitor: str
    monitor_mode: str = "min"
    trained_by_loop = True

    @classmethod
    def check(cls, config: Config, command: str) -> None:
        """Training builds the networks from [model]: a default generator/discriminator this family cannot call is
        refused here (the loader refuses only written ones, since evaluate and infer load the saved models)."""
        if command != "train":
            return
        for key in ("generator", "discriminator"):
            problem = network_misfit(config, key)
            if problem is not None:
                raise ConfigError(f"{config.path}: {problem} ([model] {key} is not set, so it took its default).")

    @classmethod
    def train(cls, config: Config, resume: bool) -> int:
        Trainer(config).fit(resume=resume)
        return 0

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

    @property
    def images_per_step(self) -> int:
        """Real training images one step consumes (all critic steps of a WGAN-GP step), for the images/s log."""
        return self.global_batch

    def start_phase(self, phase: str, first: bool) -> None:
        """Called when a phase begins (or resumes)."""

    def begin_step(self, step: tf.Tensor) -> None:
        """Called by the Trainer at the start of every traced step, per replica: the step's random draws start here."""
        self.random = StepRandom(self.config.train.seed, step)

    def d_view(self, images: tf.Tensor, step: tf.Tensor, *, for_generator: bool = False) -> tf.Tensor:
        """What the discriminator sees of a real or fake batch (every family calls this before every D call).

        Small-data stabilisers live here so that each family gets them by calling one method: DiffAugment
        (with ADA's probability p) in both steps, since G must be trained through the same augmentation
        D sees; instance noise in the D step only (`for_generator=False`).
        """
        cfg = self.config.train
        if cfg.diffaugment:
            images = diff_augment(images, cfg.diffaugment, self.random, self.ada.p if self.ada is not None else 1.0)
        if for_generator:
            return images
        total_steps = float(max(1, sum(s for _, s in self.phases)))
        return with_instance_noise(images, step, cfg.instance_noise, total_steps, self.random)

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

    def build_models(self, with_discriminator: bool = True) -> None:
        """Generator, discriminator, their optimizers (built here, inside the strategy scope) and the EMA."""
        cfg = self.config

        def build_generator() -> keras.Model:  # a builder receives the [model] keys it reads
            return GENERATORS.get(cfg.model.generator)(**cfg.arguments_for("generator", cfg.model.generator))

        self.generator = build_generator()
        self.g_optimizer = build_optimizer(cfg, cfg.train.g_learning_rate)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.discriminator: keras.Model | None = None
        if with_discriminator:
            self.discriminator = DISCRIMINATORS.get(cfg.model.discriminator)(
                **cfg.arguments_for("discriminator", cfg.model.discriminator, d_normalization=self.d_normalization()))
            self.d_optimizer = build_optimizer(cfg, cfg.train.d_learning_rate)
            self.d_optimizer.build(self.discriminator.trainable_variables)
            self.adversarial = ADVERSARIAL_LOSSES.get(cfg.train.adversarial_loss)
        if cfg.train.ema_decay > 0:
            self.ema = EMA(self.generator, cfg.train.ema_decay, build_generator)
        self.build_ada()

    def build_ada(self) -> None:
        """ADA's probability and accumulators, when `[train] ada_target` > 0 (inside the strategy scope)."""
        cfg = self.config.train
        if cfg.ada_target > 0:
            self.ada = AdaptiveAugment(cfg.ada_target, cfg.ada_interval, cfg.ada_speed_images, self.global_batch)

    def ada_objects(self) -> dict[str, Any]:
        """ADA's p and the accumulators between its updates, for the checkpoint ({} without ADA)."""
        if self.ada is None:
            return {}
        return {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t, "ada_sign_sum": self.ada.sign_sum, "ada_count": self.ada.count}

    def d_normalization(self) -> str:
        """[model] d_normalization with "auto" resolved: layer norm for a Wasserstein critic, batch norm otherwise.

        A WGAN-GP critic must not use batch norm: its gradient penalty is per example.
        """
        cfg = self.config
        wasserstein = cfg.train.adversarial_loss == "wasserstein"
        if cfg.model.d_normalization == "auto":
            return "layer" if wasserstein else "batch"
        if cfg.model.d_normalization == "batch" and wasserstein:
            raise cfg.error("model", "d_normalization", "a Wasserstein critic's gradient penalty is per example; "
                            "batch norm couples the examples. Use \"layer\", \"none\" or \"auto\"")
        return cfg.model.d_normalization

    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        return [self.g_optimizer] + ([self.d_optimizer] if self.discriminator is not None else [])

    def checkpoint_objects(self) -> dict[str, Any]:
        objects = {"generator": self.generator, "g_optimizer": self.g_optimizer}
        if self.discriminator is not None:
            objects.update(discriminator=self.discriminator, d_optimizer=self.d_optimizer)
        if self.ema is not None:
            objects["ema"] = self.ema.shadow
        return {**objects, **self.training_state_objects()}

    def training_state_objects(self) -> dict[str, Any]:
        """What every family's checkpoint holds besides its networks and optimizers: ADA's state and the learning rates."""
        objects = self.ada_objects()
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
        if self.discriminator is not None:
            atomic_write_with(folder / "discriminator.weights.h5", self.discriminator.save_weights)

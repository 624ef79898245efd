"""CycleGAN (Zhu et al., ICCV 2017): unpaired translation between two mammogram domains, e.g. fatty ↔ dense tissue.

Two translators (G: A → B, F: B → A) and two discriminators (D_B judges G's output, D_A F's) train on
random crops of the two domains of one split (see `data.domains`): least-squares adversarial terms, the
cycle-consistency L1 weighted λ, the identity L1 weighted identity_weight · λ, an image pool per D, Adam
2e-4 / β1 0.5 and a rate held for the first half of the steps and then decayed linearly to 0 (the
`linear_decay` schedule). One optimizer updates both translators and one both discriminators, as in the
paper's code. Evaluation and inference translate whole images (`evaluate.translation`, `infer.translation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..core.io import atomic_write_with
from ..core.logs import get_logger
from ..data.domains import DomainRule, load_domains
from ..data.samplers import UnpairedCropSampler
from ..evaluate.synthetic import check_synthetic_evaluation
from ..evaluate.translation import evaluate_translation
from ..infer.translation import translate_folder
from ..metrics.distribution import kid
from ..models.cyclegan import DIRECTIONS, translate
from ..metrics.features import build_random_cnn
from ..registry import ADVERSARIAL_LOSSES, DISCRIMINATORS, FAMILIES, GENERATORS
from ..train.ema import EMA
from ..train.image_pool import ImagePool
from ..train.optimizers import build_optimizer
from ..train.steps import Logs, take_step
from ..visual.tiles import translation_tile
from .base import GANFamily

log = get_logger("train")

VALIDATION_CROPS = 64  # fixed crops per domain for the per-epoch KID and cycle error
TILE_COLUMNS = 8


def domain_rule(config: Config) -> DomainRule:
    cfg = config.cyclegan
    return DomainRule(cfg.domain_column, {"A": tuple(cfg.domain_a), "B": tuple(cfg.domain_b)}, cfg.zoom)


def _l1(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Per-example mean absolute difference."""
    return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)), axis=[1, 2, 3])


@FAMILIES.register("cyclegan")
class CycleGAN(GANFamily):
    """Unpaired A ↔ B translation; models/<best|final>/generator_a_to_b.keras and generator_b_to_a.keras."""

    monitor = "val/kid"

    @classmethod
    def check(cls, config: Config, command: str) -> None:
        super().check(config, command)
        if config.train.adversarial_loss == "wasserstein":
            raise config.error("train", "adversarial_loss", "CycleGAN trains its discriminators without a gradient penalty, "
                               "which a Wasserstein critic needs; use \"lsgan\" (the paper's) or another loss")
        if config.cyclegan.domain_column and set(config.cyclegan.domain_a) & set(config.cyclegan.domain_b):
            raise config.error("cyclegan", "domain_b", f"shares values with domain_a = {list(config.cyclegan.domain_a)}; "
                               "the two domains must be disjoint")
        if command == "evaluate":
            check_synthetic_evaluation(config)

    @classmethod
    def evaluate(cls, config: Config, output_dir: Path) -> int:
        return evaluate_translation(config, output_dir, domain_rule(config))

    @classmethod
    def infer(cls, config: Config, output_dir: Path) -> int:
        return translate_folder(config, output_dir)

    def __init__(self, config: Config, strategy: tf.distribute.Strategy) -> None:
        super().__init__(config, strategy)
        cfg, side = config, config.model.image_size
        rule = domain_rule(config)
        train_dir = cfg.need("dataset", "train_dir", "training")
        train = load_domains(train_dir, rule, cfg.dataset.data_range, side, "[dataset] train_dir")
        valid = (load_domains(cfg.dataset.valid_dir, rule, cfg.dataset.data_range, side, "[dataset] valid_dir")
                 if cfg.dataset.valid_dir else train)
        log.info("CycleGAN domains: A (%s) %d training / %d validation images, B (%s) %d / %d; %d² crops.",
                 rule.describe("A"), len(train["A"]), len(valid["A"]), rule.describe("B"),
                 len(train["B"]), len(valid["B"]), side)
        self.sampler = UnpairedCropSampler(train["A"], train["B"], side, cfg.dataset.augment_flips,
                                           cfg.train.seed, cfg.dataset.min_crop_mean)
        fixed = UnpairedCropSampler(valid["A"], valid["B"], side, False, cfg.train.seed, cfg.dataset.min_crop_mean)
        self.valid = {domain: fixed.fixed(index, VALIDATION_CROPS, cfg.train.seed + 1) for index, domain in enumerate("AB")}
        self.phases = [("gan", cfg.train.gan_steps)]
        self.cycle_weight = cfg.cyclegan.cycle_weight
        self.identity_weight = cfg.cyclegan.identity_weight * cfg.cyclegan.cycle_weight
        self.real_logits_needed = cfg.train.adversarial_loss == "relativistic"
        differences = [f"{key} = {value!r} (paper {paper!r})" for key, value, paper in (
            ("adversarial_loss", cfg.train.adversarial_loss, "lsgan"), ("lr_schedule", cfg.train.lr_schedule, "linear_decay"),
            ("g_learning_rate", cfg.train.g_learning_rate, 2e-4), ("d_learning_rate", cfg.train.d_learning_rate, 2e-4),
            ("beta_1", cfg.train.beta_1, 0.5)) if value != paper]
        if differences:  # [train] keys are shared by every family, so their defaults are not CycleGAN's
            log.info("CycleGAN settings that differ from Zhu et al. 2017: [train] %s.", ", ".join(differences))

    def d_normalization(self) -> str:
        """auto → instance norm, the paper's PatchGAN; layer norm needs a fixed image size, which a translator's D has not."""
        chosen = self.config.model.d_normalization
        if chosen == "layer":
            raise self.config.error("model", "d_normalization", "layer norm needs a fixed image size; CycleGAN's "
                                    "discriminators see crops and whole images. Use \"instance\", \"batch\" or \"none\"")
        return "instance" if chosen == "auto" else chosen

    def build(self) -> None:
        """Both translators and discriminators, one optimizer per pair (built here, inside the strategy scope)."""
        cfg, side = self.config, self.config.model.image_size

        def generator() -> keras.Model:
            return GENERATORS.get(cfg.model.generator)(**cfg.arguments_for("generator", cfg.model.generator))

        def discriminator() -> keras.Model:
            return DISCRIMINATORS.get(cfg.model.discriminator)(
                **cfg.arguments_for("discriminator", cfg.model.discriminator, d_normalization=self.d_normalization()))

        self.generators = {direction: generator() for direction in DIRECTIONS}
        self.discriminators = {domain: discriminator() for domain in "AB"}
        probe = np.zeros((1, side, side, 1), np.float32)
        if tuple(self.generators["a_to_b"](probe).shape) != probe.shape:
            raise cfg.error("model", "generator", f"must return an image of its input's size ({side}²); a CycleGAN translator, "
                            "e.g. \"resnet_translator\" or \"unet_translator\"")
        self.g_variables = [v for model in self.generators.values() for v in model.trainable_variables]
        self.d_variables = [v for model in self.discriminators.values() for v in model.trainable_variables]
        self.g_optimizer = build_optimizer(cfg, cfg.train.g_learning_rate)
        self.g_optimizer.build(self.g_variables)
        self.d_optimizer = build_optimizer(cfg, cfg.train.d_learning_rate)
        self.d_optimizer.build(self.d_variables)
        self.adversarial = ADVERSARIAL_LOSSES.get(cfg.train.adversarial_loss)
        self.pools = {domain: ImagePool(cfg.cyclegan.pool_size, (side, side, 1), f"pool_{domain}") for domain in "AB"}
        self.emas = ({direction: EMA(model, cfg.train.ema_decay, generator) for direction, model in self.generators.items()}
                     if cfg.train.ema_decay > 0 else {})
        self.build_ada()

    def optimizers(self) -> list[keras.optimizers.Optimizer]:
        return [self.g_optimizer, self.d_optimizer]

    def checkpoint_objects(self) -> dict[str, object]:
        objects: dict[str, object] = {"g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}
        objects.update({f"generator_{d}": model for d, model in self.generators.items()})
        objects.update({f"discriminator_{d}": model for d, model in self.discriminators.items()})
        objects.update({f"ema_{d}": ema.shadow for d, ema in self.emas.items()})
        for domain, pool in self.pools.items():
            objects.update({f"pool_{domain}_{name}": variable for name, variable in pool.variables().items()})
        return {**objects, **self.training_state_objects()}

    def translators(self) -> dict[str, keras.Model]:
        """The translators used for validation, tiles and export: the EMA copies when enabled."""
        return {d: self.emas[d].shadow if d in self.emas else model for d, model in self.generators.items()}

    def after_step(self, phase: str) -> None:
        for ema in self.emas.values():
            ema.update()
        if self.ada is not None:
            self.ada.update()

    def train_dataset(self, step: int) -> tf.data.Dataset:
        return self.sampler.dataset(self.global_batch, step * self.global_batch)

    def _adversarial_generator(self, discriminator: keras.Model, real: tf.Tensor, fake: tf.Tensor, step: tf.Tensor) -> tf.Tensor:
        fake_logits = discriminator(self.d_view(fake, step, for_generator=True), training=True)[0]
        real_logits = (discriminator(self.d_view(real, step, for_generator=True), training=True)[0]
                       if self.real_logits_needed else fake_logits)  # only the relativistic loss reads D(real) here
        return self.adversarial.generator(real_logits, fake_logits)

    def generator_step(self, real_a: tf.Tensor, real_b: tf.Tensor, step: tf.Tensor) -> Logs:
        """One update of both translators: adversarial + λ·cycle (+ identity) terms; the logs carry the fakes for D."""
        to_b, to_a = self.generators["a_to_b"], self.generators["b_to_a"]

        def loss() -> tuple[tf.Tensor, Logs]:
            fake_b, fake_a = to_b(real_a, training=True), to_a(real_b, training=True)
            adversarial = (self._adversarial_generator(self.discriminators["B"], real_b, fake_b, step)
                           + self._adversarial_generator(self.discriminators["A"], real_a, fake_a, step))
            cycle = _l1(to_a(fake_b, training=True), real_a) + _l1(to_b(fake_a, training=True), real_b)
            per_example = adversarial + self.cycle_weight * cycle
            logs: Logs = {"adversarial": self.average(adversarial), "cycle": self.average(cycle)}
            if self.identity_weight > 0:
                identity = _l1(to_b(real_b, training=True), real_b) + _l1(to_a(real_a, training=True), real_a)
                per_example += self.identity_weight * identity
                logs["identity"] = self.average(identity)
            g_loss = self.average(per_example)
            return g_loss, {"g": g_loss, **logs, "fake_a": fake_a, "fake_b": fake_b}

        return take_step(self.g_optimizer, self.g_variables, loss)

    def discriminator_step(self, reals: dict[str, tf.Tensor], fakes: dict[str, tf.Tensor], step: tf.Tensor) -> Logs:
        """One update of both discriminators, each on its domain's real crops and a pool draw of translations into it."""
        cfg = self.config.train
        pooled = {domain: tf.stop_gradient(self.pools[domain].query(fakes[domain], self.random)) for domain in "AB"}

        def loss() -> tuple[tf.Tensor, Logs]:
            logs, total = {}, 0.0
            for domain in "AB":
                discriminator = self.discriminators[domain]
                real_logits = discriminator(self.d_view(reals[domain], step), training=True)[0]
                fake_logits = discriminator(self.d_view(pooled[domain], step), training=True)[0]
                self.observe_real_logits(real_logits)
                per_example = self.adversarial.discriminator(real_logits, fake_logits, cfg.label_smoothing)
                logs[f"d_{domain.lower()}"] = self.average(per_example)
                total += per_example
            d_loss = self.average(total)
            return d_loss, {"d": d_loss, **logs}

        return take_step(self.d_optimizer, self.d_variables, loss)

    def train_step(self, phase: str) -> Callable:
        def step_fn(batch, step):
            real_a, real_b = batch[0] * 2.0 - 1.0, batch[1] * 2.0 - 1.0
            logs = dict(self.generator_step(real_a, real_b, step))
            fakes = {"A": logs.pop("fake_a"), "B": logs.pop("fake_b")}
            return {**logs, **self.discriminator_step({"A": real_a, "B": real_b}, fakes, step)}

        return step_fn

    def chains(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The validation crops through both translators: "a_to_b", "a_to_b_to_a", "b_to_a", "b_to_a_to_b" in [0, 1]."""
        models = self.translators()
        to_b, to_a = models["a_to_b"], models["b_to_a"]
        fake_b, fake_a = translate(to_b, images["A"]), translate(to_a, images["B"])
        return {"a_to_b": fake_b, "a_to_b_to_a": translate(to_a, fake_b), "b_to_a": fake_a, "b_to_a_to_b": translate(to_b, fake_a)}

    def validate(self) -> dict[str, float]:
        """KID (seeded random-CNN features) of each translation against the real crops of its target domain, their mean
        (the monitored value), the cycle L1 and how far translation moves its input (L1, 0-1 grey levels)."""
        if not hasattr(self, "_extractor"):
            self._extractor = build_random_cnn(seed=self.config.train.seed)
            self._real_features = {d: self._extractor.features(self.valid[d][..., None]) for d in "AB"}
        out = self.chains(self.valid)
        distances = {}
        for direction, target in (("a_to_b", "B"), ("b_to_a", "A")):
            features = self._extractor.features(out[direction][..., None])
            distances[direction] = kid(self._real_features[target], features, subsets=20, subset_size=64, seed=0).mean
        a, b = self.valid["A"], self.valid["B"]
        return {"val/kid": float(np.mean(list(distances.values()))), "val/kid_a_to_b": distances["a_to_b"],
                "val/kid_b_to_a": distances["b_to_a"],
                "val/cycle_l1": float((np.abs(out["a_to_b_to_a"] - a).mean() + np.abs(out["b_to_a_to_b"] - b).mean()) / 2),
                "val/change_l1": float((np.abs(out["a_to_b"] - a).mean() + np.abs(out["b_to_a"] - b).mean()) / 2)}

    def write_tile(self, path: Path, epoch: int, metrics: dict[str, float]) -> None:
        """Fixed validation crops: A, A → B, A → B → A, then B, B → A, B → A → B."""
        shown = {d: self.valid[d][:TILE_COLUMNS] for d in "AB"}
        out = self.chains(shown)
        rows = [("A", shown["A"]), ("A to B", out["a_to_b"]), ("A to B to A", out["a_to_b_to_a"]),
                ("B", shown["B"]), ("B to A", out["b_to_a"]), ("B to A to B", out["b_to_a_to_b"])]
        translation_tile(path, f"epoch {epoch}", rows, metrics)

    def export(self, folder: Path) -> None:
        """generator_<direction>.keras (EMA weights when enabled) and .weights.h5; the discriminators' weights."""
        for direction, model in self.translators().items():
            atomic_write_with(folder / f"generator_{direction}.keras", model.save)
            atomic_write_with(folder / f"generator_{direction}.weights.h5", model.save_weights)
        for domain, model in self.discriminators.items():
            atomic_write_with(folder / f"discriminator_{domain}.weights.h5", model.save_weights)


"""SinGAN (`[model] task = "singan"`): a bank of single-image GANs, one pyramid per source patch.

For scarce lesion classes a GAN that learns from one image is what a handful of annotated
calcifications allows (Shaham et al., ICCV 2019). `train` trains one SinGAN per chosen patch of
[dataset] train_dir — scale by scale, coarse to fine, each scale frozen before the next — into
`<output_dir>/bank/<patch>/` with a manifest; a killed bank resumes at the patch and scale it was on.
`infer` samples [infer] num_samples images per SinGAN into `images/` (+ `masks/` when injection keeps
the source's geometry) with a manifest; `evaluate` reports SIFID, diversity and closeness to the
source per SinGAN and the bank's samples against real test patches of the class.

Per scale n, the loss is WGAN-GP (critic: D(fake) − D(real) + gp_weight·GP) plus
reconstruction_weight × MSE of the fixed reconstruction path (the coarsest scale's fixed noise z*,
zero noise above it), and the noise amplitude of scale n is noise_amp × the RMSE of the upsampled
reconstruction against the real image at scale n.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Iterable

import cv2
import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config, load_config, start_output_folder
from ..core.io import atomic_write_csv, atomic_write_text, atomic_write_with
from ..core.logs import add_log_file, get_logger, setup_console
from ..data.images import read_image, write_png
from ..data.labels import patch_metadata, zoom_matches
from ..data.patch_dataset import patch_folder, patch_names, read_resized, resize_image
from ..errors import DataError, UserError
from ..evaluate.synthetic import SyntheticArms, score_synthetic
from ..losses import gradient_penalty, pixel_loss_per_example
from ..losses.pixel import mse
from ..metrics.memorisation import configured_extractor, ssim_matrix
from ..metrics.single_image import pixel_diversity, sifid
from ..models.singan import Pyramid, build_scale_discriminator, build_scale_generator, pyramid_for, scale_filters
from ..registry import FAMILIES
from ..train.randomness import StepRandom
from ..visual.report import write_command_report
from ..visual.tiles import singan_pyramid_sheet, singan_tile
from .base import Family

log = get_logger("train")

STATE_FILE = "pyramid.json"
BANK = "bank"
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class SourcePatch:
    """One patch the bank trains a SinGAN on: its file, metadata row, pixels in [0, 1] and mask."""

    name: str
    path: Path
    row: dict[str, str]
    image: np.ndarray  # (S, S) float32 in [0, 1], S = [model] image_size
    mask: np.ndarray | None  # (S, S) {0, 1}, when train_dir has masks/
    max_value: int  # 255 or 65535: the bit depth samples are written in

    @property
    def stem(self) -> str:
        return Path(self.name).stem


def chosen_patches(config: Config, split_dir: Path, key: str) -> list[SourcePatch]:
    """The patches of a prepared patch split that match [singan] filter_column/filter_value and zoom."""
    cfg = config.singan
    rows = patch_metadata(split_dir, (), "SinGAN ([singan] filter_column picks the patches)")
    names = patch_names(split_dir)
    if rows and cfg.filter_column not in next(iter(rows.values())):
        raise config.error("singan", "filter_column", f"{split_dir.parent / 'metadata.csv'} has no such column "
                           f"(it has {', '.join(next(iter(rows.values())))})")

    def wanted(name: str) -> bool:
        row = rows.get(name)
        if row is None:
            return False
        if cfg.filter_value and row.get(cfg.filter_column) != cfg.filter_value:
            return False
        return zoom_matches(row, cfg.zoom)

    picked = [name for name in names if wanted(name)]
    if cfg.max_patches:
        picked = picked[: cfg.max_patches]
    if not picked:
        raise config.error("singan", "filter_value", f"no patch of [dataset] {key} = {split_dir} has "
                           f"{cfg.filter_column} = {cfg.filter_value!r} (zoom {cfg.zoom})")
    size = config.model.image_size
    folder = patch_folder(split_dir)
    masks = split_dir / "masks"
    patches = []
    for name in picked:
        raw = read_image(folder / name)
        top = int(np.iinfo(raw.dtype).max)
        mask = read_resized([masks / name], size, binary=True)[0] if (masks / name).is_file() else None
        patches.append(SourcePatch(name, folder / name, rows[name], resize_image(raw.astype(np.float32) / top, (size, size)),
                                   None if mask is None else (mask >= 0.5).astype(np.float32), top))
    return patches


def _resize_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in): OpenCV's bicubic resize along one axis, as a matrix (the columns are resized unit vectors)."""
    return cv2.resize(np.eye(size_in, dtype=np.float32), (size_in, size_out), interpolation=cv2.INTER_CUBIC)


def _upsample(batch: tf.Tensor, shape: tuple[int, int]) -> tf.Tensor:
    """Bicubic resize of (N, H, W, 1) to `shape` as two matrix products, which XLA compiles (its resize op it does not)."""
    rows = tf.constant(_resize_matrix(int(batch.shape[1]), shape[0]))
    columns = tf.constant(_resize_matrix(int(batch.shape[2]), shape[1]))
    return tf.einsum("ij,bjkc,lk->bilc", rows, tf.cast(batch, tf.float32), columns)


def sample_file_name(patch: SourcePatch, seed: int, index: int) -> str:
    """The file `infer` writes sample `index` of a SinGAN under (`evaluate` names the same samples alike)."""
    return f"{patch.stem}_singan_s{seed}_{index:03d}.png"


def patch_seed(base: int, name: str) -> int:
    """A patch's seed: the same whatever else is in the bank or in which order it trains."""
    return (int(base) * 7919 + zlib.crc32(name.encode())) % (1 << 30)


class SinGAN:
    """One trained (or training) pyramid: a generator and noise amplitude per scale and the fixed noise z*."""

    def __init__(self, pyramid: Pyramid, z_star: np.ndarray, intensity: tuple[float, float]) -> None:
        self.pyramid = pyramid
        self.z_star = z_star.astype(np.float32)  # (H0, W0): the coarsest scale's reconstruction noise
        self.intensity = intensity  # the source's darkest and brightest value in [0, 1]
        self.generators: list[keras.Model] = []
        self.amplitudes: list[float] = []

    @staticmethod
    def intensity_range(image: np.ndarray) -> tuple[float, float]:
        low, high = float(image.min()), float(image.max())
        return low, max(high, low + 1e-3)

    def stretch(self, image: np.ndarray) -> np.ndarray:
        """[0, 1] pixels → the network's [-1, 1], the source's own range filling it.

        A mammogram patch spans a tenth of the grey range; unstretched, the critic's gradient-penalised
        scores barely separate a sample from the source and the generator learns the reconstruction alone
        (samples stayed white noise at the coarsest scale).
        """
        low, high = self.intensity
        return ((image - low) / (high - low) * 2.0 - 1.0).astype(np.float32)

    def unstretch(self, values: np.ndarray) -> np.ndarray:
        low, high = self.intensity
        return np.clip((values + 1.0) / 2.0 * (high - low) + low, 0.0, 1.0).astype(np.float32)

    def reconstruction_images(self) -> list[np.ndarray]:
        """The fixed reconstruction path's image at each trained scale, in [0, 1] like the source."""
        return [self.unstretch(image) for image in self.reconstruction()]

    def reconstruction(self, upto: int | None = None) -> list[np.ndarray]:
        """The fixed reconstruction path's output at each trained scale (network values in [-1, 1], (H, W))."""
        outputs, previous = [], np.zeros((1, *self.pyramid.shapes[0], 1), np.float32)
        for n, generator in enumerate(self.generators[: upto]):
            shape = self.pyramid.shapes[n]
            previous = _upsample(previous, shape).numpy() if n else previous
            noise = self.z_star[None, ..., None] if n == 0 else np.zeros_like(previous)
            previous = generator([noise, previous], training=False).numpy()
            outputs.append(previous[0, ..., 0])
        return outputs

    def previous_for(self, n: int) -> np.ndarray:
        """The reconstruction of scale n − 1 upsampled to scale n (zeros for the coarsest): scale n's fixed input."""
        if n == 0:
            return np.zeros((1, *self.pyramid.shapes[0], 1), np.float32)
        return _upsample(self.reconstruction(n)[-1][None, ..., None], self.pyramid.shapes[n]).numpy()

    def sample(self, count: int, seed: int, upto: int | None = None, injection_scale: int = 0,
               inject: np.ndarray | None = None, size: tuple[float, float] = (1.0, 1.0)) -> list[np.ndarray]:
        """`count` samples in [0, 1] through the first `upto` scales.

        injection_scale 0: random samples from the coarsest scale, at `size` × each scale's shape.
        n > 0: `inject` ([0, 1], any size) shrunk to scale n − 1 and upsampled to scale n replaces the
        coarser scales' output, and fresh noise acts from scale n on (SinGAN's editing/harmonisation).
        """
        last = len(self.generators) if upto is None else upto
        shapes = [(max(1, round(h * size[0])), max(1, round(w * size[1]))) for h, w in self.pyramid.shapes]
        rng = np.random.default_rng(seed)
        first, previous = 0, np.zeros((count, *shapes[0], 1), np.float32)
        if injection_scale > 0:
            start = resize_image(resize_image(inject, self.pyramid.shapes[injection_scale - 1]), self.pyramid.shapes[injection_scale])
            first, previous = injection_scale, np.repeat(self.stretch(start)[None, ..., None], count, axis=0)
        for n in range(first, last):
            if n > first:
                previous = _upsample(previous, shapes[n]).numpy()
            noise = rng.standard_normal((count, *shapes[n], 1)).astype(np.float32) * self.amplitudes[n]
            previous = self.generators[n]([noise, previous], training=False).numpy()
        return [self.unstretch(image[..., 0]) for image in previous]

    # Files of a bank entry: one .keras per finished scale, its critic's weights (the next scale starts from
    # them when its filter count is the same) and the state, written last and atomically.
    @staticmethod
    def generator_file(folder: Path, n: int) -> Path:
        return folder / f"scale_{n:02d}_generator.keras"

    @staticmethod
    def critic_file(folder: Path, n: int) -> Path:
        return folder / f"scale_{n:02d}_critic.weights.h5"

    @classmethod
    def load(cls, folder: Path) -> tuple["SinGAN", dict[str, Any]]:
        """The finished scales of a bank entry and its state (an entry whose state is unreadable is an error)."""
        state_file = folder / STATE_FILE
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
            pyramid = Pyramid(tuple(tuple(shape) for shape in state["shapes"]), float(state["factor"]))
            model = cls(pyramid, np.asarray(state["z_star"], np.float32), tuple(state["intensity"]))
            for n, amplitude in enumerate(state["amplitudes"]):
                model.generators.append(keras.saving.load_model(cls.generator_file(folder, n), compile=False))
                model.amplitudes.append(float(amplitude))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{folder}: not a readable SinGAN bank entry ({error}); train it again with `mammogan train`.") from error
        return model, state


@dataclass(frozen=True)
class ScaleSettings:
    """The [singan] training keys, as one picklable object a worker process receives."""

    filters: int
    max_filters: int
    layers: int
    steps: int
    d_steps: int
    g_steps: int
    learning_rate: float
    lr_decay_step: int
    lr_decay_factor: float
    gp_weight: float
    reconstruction_weight: float
    noise_amp: float
    tile_every: int
    tile_count: int
    jit_compile: bool = False

    @classmethod
    def from_config(cls, config: Config) -> "ScaleSettings":
        s = config.singan
        return cls(s.filters, s.max_filters, s.layers, s.steps_per_scale, s.d_steps, s.g_steps, s.learning_rate,
                   s.lr_decay_step, s.lr_decay_factor, s.gp_weight, s.reconstruction_weight, s.noise_amp,
                   config.train.steps_per_epoch, config.train.tile_images, config.train.jit_compile)


def _optimizer(settings: ScaleSettings) -> keras.optimizers.Optimizer:
    rate: Any = settings.learning_rate
    if 0 < settings.lr_decay_step < settings.steps:
        rate = keras.optimizers.schedules.PiecewiseConstantDecay(
            [settings.lr_decay_step], [settings.learning_rate, settings.learning_rate * settings.lr_decay_factor])
    return keras.optimizers.Adam(rate, beta_1=0.5, beta_2=0.999)


def critic_loss(real_scores: tf.Tensor, fake_scores: tf.Tensor, penalty: tf.Tensor, gp_weight: float) -> tf.Tensor:
    """WGAN-GP critic loss of one scale: mean D(fake) − mean D(real) + gp_weight · GP (score maps averaged)."""
    return tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores) + gp_weight * tf.reduce_mean(penalty)


def generator_loss(fake_scores: tf.Tensor, rebuilt: tf.Tensor, real: tf.Tensor, reconstruction_weight: float) -> tuple[tf.Tensor, tf.Tensor]:
    """(total, reconstruction MSE): −mean D(fake) + alpha · MSE(reconstruction of the fixed noise path, real image)."""
    reconstruction = tf.reduce_mean(pixel_loss_per_example(mse, real, rebuilt))
    return -tf.reduce_mean(fake_scores) + reconstruction_weight * reconstruction, reconstruction


class ScaleTrainer:
    """Trains scale n of a SinGAN whose coarser scales are trained and frozen."""

    def __init__(self, model: SinGAN, n: int, real: np.ndarray, settings: ScaleSettings, seed: int,
                 start: tuple[keras.Model, keras.Model] | None) -> None:
        self.model, self.n, self.settings, self.seed = model, n, settings, seed
        filters = scale_filters(n, settings.filters, settings.max_filters)
        self.generator = build_scale_generator(filters, settings.layers, seed, name=f"singan_g{n}")
        self.critic = build_scale_discriminator(filters, settings.layers, seed + 1, name=f"singan_d{n}")
        if start is not None:  # the paper starts each scale from the previous one when the widths match
            self.generator.set_weights(start[0].get_weights())
            self.critic.set_weights(start[1].get_weights())
        self.g_optimizer, self.d_optimizer = _optimizer(settings), _optimizer(settings)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.critic.trainable_variables)
        self.real = tf.constant(model.stretch(real)[None, ..., None], tf.float32)
        self.previous_reconstruction = tf.constant(model.previous_for(n))
        if n == 0:
            self.amplitude = 1.0
            self.reconstruction_noise = tf.constant(model.z_star[None, ..., None])
        else:
            rmse = float(tf.sqrt(tf.reduce_mean(tf.square(self.real - self.previous_reconstruction))))
            self.amplitude = settings.noise_amp * rmse
            self.reconstruction_noise = tf.zeros_like(self.real)
        # XLA: 1.3–1.6× faster iterations on this CPU (32 filters, 25² to 64²), but each scale compiles for ~20 s instead of ~13 s
        self.iteration = tf.function(self._iteration, jit_compile=settings.jit_compile)

    def _random_previous(self, random: StepRandom) -> tf.Tensor:
        """A random sample of the frozen coarser scales, upsampled to this scale (zeros at the coarsest)."""
        shapes = self.model.pyramid.shapes
        previous = tf.zeros([1, *shapes[0], 1])
        for k, generator in enumerate(self.model.generators[: self.n]):
            if k:
                previous = _upsample(previous, shapes[k])
            previous = generator([random.normal([1, *shapes[k], 1]) * self.model.amplitudes[k], previous], training=False)
        return _upsample(previous, shapes[self.n]) if self.n else previous

    def _iteration(self, step: tf.Tensor) -> dict[str, tf.Tensor]:
        random = StepRandom(self.seed, step)
        previous = self._random_previous(random)
        noise = random.normal(tf.shape(self.real)) * self.amplitude
        generator, critic, s = self.generator, self.critic, self.settings
        d_loss = tf.constant(0.0)
        fake = generator([noise, previous], training=True)  # G does not change during the critic's steps
        for _ in range(s.d_steps):
            with tf.GradientTape() as tape:
                penalty = gradient_penalty(lambda x: critic(x, training=True), self.real, fake, seed=random.seed())
                d_loss = critic_loss(critic(self.real, training=True), critic(fake, training=True), penalty, s.gp_weight)
            self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, critic.trainable_variables), critic.trainable_variables))
        g_loss = reconstruction = tf.constant(0.0)
        for _ in range(s.g_steps):
            with tf.GradientTape() as tape:
                fake = generator([noise, previous], training=True)
                rebuilt = generator([self.reconstruction_noise, self.previous_reconstruction], training=True)
                g_loss, reconstruction = generator_loss(critic(fake, training=True), rebuilt, self.real, s.reconstruction_weight)
            self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, generator.trainable_variables), generator.trainable_variables))
        return {"d": d_loss, "g": g_loss, "reconstruction_mse": reconstruction}

    def fit(self, on_tile: Callable[[int, dict[str, float]], None]) -> dict[str, float]:
        logs: dict[str, float] = {}
        for step in range(1, self.settings.steps + 1):
            logs = {k: float(v) for k, v in self.iteration(tf.constant(step, tf.int64)).items()}
            if step % self.settings.tile_every == 0 or step == self.settings.steps:
                on_tile(step, logs)
        return logs


def check_learnable(patch: SourcePatch) -> None:
    """A constant patch gives a SinGAN nothing to learn (and its critic diverges): refuse it by name."""
    if float(patch.image.max() - patch.image.min()) < 0.5 / patch.max_value:
        raise DataError(f"{patch.path}: every pixel is {patch.image.flat[0] * patch.max_value:.0f}, so a SinGAN has nothing to "
                        "learn from it (a lesion annotated outside the prepared breast?); it is left out of the bank.")


def train_patch(patch: SourcePatch, folder: Path, pyramid: Pyramid, settings: ScaleSettings, seed: int) -> dict[str, Any]:
    """Train the scales of one SinGAN not yet in `folder` (a killed run resumes at the scale it was on)."""
    check_learnable(patch)
    folder.mkdir(parents=True, exist_ok=True)
    state_file = folder / STATE_FILE
    if state_file.is_file():
        model, state = SinGAN.load(folder)
        if [list(shape) for shape in state["shapes"]] != [list(shape) for shape in pyramid.shapes]:
            raise DataError(f"{folder}: trained with the scales {state['shapes']}, but the config now gives {list(pyramid.shapes)}; "
                            "train into a new [train] output_dir (or use --restart).")
    else:
        model = SinGAN(pyramid, np.random.default_rng(seed).standard_normal(pyramid.shapes[0]).astype(np.float32),
                       SinGAN.intensity_range(patch.image))
        state = {"patch": patch.name, "shapes": [list(s) for s in pyramid.shapes], "factor": pyramid.factor,
                 "intensity": list(model.intensity), "z_star": model.z_star.tolist(), "amplitudes": [],
                 "initial_rmse": [], "reconstruction_rmse": [], "seconds": []}
    reals = [resize_image(patch.image, shape) for shape in pyramid.shapes]
    start = None
    first = len(model.generators)
    if first and first < pyramid.scales:
        log.info("  %s: resuming at scale %d of %d", patch.name, first + 1, pyramid.scales)
    for n in range(first, pyramid.scales):
        began = time.perf_counter()
        if n and scale_filters(n, settings.filters, settings.max_filters) == scale_filters(n - 1, settings.filters, settings.max_filters):
            critic = build_scale_discriminator(scale_filters(n - 1, settings.filters, settings.max_filters), settings.layers)
            critic.load_weights(SinGAN.critic_file(folder, n - 1))
            start = (model.generators[n - 1], critic)
        else:
            start = None
        trainer = ScaleTrainer(model, n, reals[n], settings, seed + 1000 * n, start)
        model.generators.append(trainer.generator)  # the model's finest scale from here on: tiles sample through it
        model.amplitudes.append(trainer.amplitude)

        def rmse_of_reconstruction(n: int = n) -> float:
            return float(np.sqrt(np.mean((model.reconstruction_images()[-1] - reals[n]) ** 2)))

        state["initial_rmse"].append(rmse_of_reconstruction())  # the untrained generator's

        def tile(step: int, logs: dict[str, float], n: int = n) -> None:
            singan_tile(folder / "tiles" / f"scale{n:02d}_step{step:05d}.png", patch.name, n, pyramid.scales, step,
                        settings.steps, reals[n], model.reconstruction_images()[-1], model.sample(settings.tile_count, seed=0),
                        {**logs, "rec_rmse": rmse_of_reconstruction()})

        logs = trainer.fit(tile)
        atomic_write_with(SinGAN.generator_file(folder, n), trainer.generator.save)
        atomic_write_with(SinGAN.critic_file(folder, n), trainer.critic.save_weights)
        state["amplitudes"].append(trainer.amplitude)
        state["reconstruction_rmse"].append(rmse_of_reconstruction())
        state["seconds"].append(round(time.perf_counter() - began, 2))
        atomic_write_text(state_file, json.dumps(state))
        log.info("  %s: scale %d/%d (%d×%d) in %.0f s: reconstruction RMSE %.4f, noise amplitude %.4f, critic %.3f",
                 patch.name, n + 1, pyramid.scales, *pyramid.shapes[n], state["seconds"][-1],
                 state["reconstruction_rmse"][-1], trainer.amplitude, logs.get("d", 0.0))
    if first < pyramid.scales:
        singan_pyramid_sheet(folder / "pyramid.png", patch.name, reals, model.reconstruction_images(),
                             [model.sample(settings.tile_count, seed=0, upto=n + 1) for n in range(pyramid.scales)])
    return state


def _bank_row(patch: SourcePatch, config: Config, state: dict[str, Any] | None, error: str = "") -> dict[str, Any]:
    column = config.singan.filter_column
    row = {"patch": patch.name, "source_image": patch.row.get("source_image", ""), "class": patch.row.get(column, ""),
           "folder": f"{BANK}/{patch.stem}", "status": "failed" if error else "trained", "error": error,
           "scales": "", "size": "", "minutes": "", "reconstruction_rmse": ""}
    if state is not None:
        row.update(scales=len(state["shapes"]), size="×".join(map(str, state["shapes"][-1])),
                   minutes=round(sum(state["seconds"]) / 60.0, 2),
                   reconstruction_rmse=state["reconstruction_rmse"][-1] if state["reconstruction_rmse"] else "")
    return row


def _pyramid(config: Config, patch: SourcePatch) -> Pyramid:
    s = config.singan
    return pyramid_for(*patch.image.shape, s.scale_factor, s.min_size, s.max_size, s.num_scales)


def _finished_state(folder: Path, pyramid: Pyramid) -> dict[str, Any] | None:
    """The state of a bank entry whose every scale is trained for this pyramid, else None."""
    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    shapes = [list(shape) for shape in pyramid.shapes]
    return state if state.get("shapes") == shapes and len(state.get("amplitudes", [])) == len(shapes) else None


def _train_one(config_path: str, patch: SourcePatch, pyramid: Pyramid, threads: int) -> tuple[str, dict[str, Any] | None, str]:
    """One bank entry, in this process or a worker (which reloads the config; its threads share the cores)."""
    config = load_config(config_path)
    if threads:  # a worker process: its log lines go to the console and the run's train.log too
        setup_console()
        add_log_file(config.train.output_dir, "train.log")
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # this worker already ran a patch: TensorFlow keeps its first setting
            pass
    try:
        state = train_patch(patch, config.train.output_dir / BANK / patch.stem, pyramid, ScaleSettings.from_config(config),
                            patch_seed(config.train.seed, patch.name))
    except UserError as error:
        return patch.name, None, str(error)
    return patch.name, state, ""


def read_bank(config: Config) -> list[dict[str, str]]:
    """The trained entries of the bank's manifest (evaluate and infer sample them)."""
    manifest = config.train.output_dir / MANIFEST
    if not manifest.is_file():
        raise DataError(f"{manifest}: not found; train the SinGAN bank first (`mammogan train` with this config writes it).")
    with manifest.open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("status") == "trained"]
    if not rows:
        raise DataError(f"{manifest}: no trained SinGAN in the bank.")
    return rows


@FAMILIES.register("singan")
class SinGANBank(Family):
    """`train` the bank, `evaluate` it (per-SinGAN SIFID/diversity/closeness and the synthetic-image evaluation),
    `infer` samples from every SinGAN into a dataset folder."""

    @classmethod
    def check(cls, config: Config, command: str) -> None:
        s = config.singan
        if s.injection_scale > 0 and s.sample_size != [1.0, 1.0]:
            raise config.error("singan", "sample_size", "injected samples keep the source's size; set [1.0, 1.0] or injection_scale = 0")

    @classmethod
    def train(cls, config: Config, resume: bool) -> int:
        output = config.train.output_dir
        start_output_folder(config, "train", "train.log")
        patches = chosen_patches(config, config.need("dataset", "train_dir", "training a SinGAN bank"), "train_dir")
        pyramids = {p.name: _pyramid(config, p) for p in patches}  # a pyramid the config cannot make is refused before any training
        results: dict[str, tuple[dict[str, Any] | None, str]] = {}
        for patch in patches:  # unlearnable and finished entries are not sent to a worker
            try:
                check_learnable(patch)
            except DataError as error:
                log.error("  %s failed: %s", patch.name, error)
                results[patch.name] = (None, str(error))
                continue
            state = _finished_state(output / BANK / patch.stem, pyramids[patch.name])
            if state is not None:
                log.info("  %s: already trained", patch.name)
                results[patch.name] = (state, "")
        todo = [p for p in patches if p.name not in results]
        workers = max(1, min(config.singan.workers, len(todo)))
        log.info("SinGAN bank: %d patches of %s (%s = %r), %d to train: %d scales at %d², %d iterations per scale, %d worker(s) → %s",
                 len(patches), config.dataset.train_dir, config.singan.filter_column, config.singan.filter_value, len(todo),
                 pyramids[patches[0].name].scales, config.model.image_size, config.singan.steps_per_scale, workers, output / BANK)

        def write_manifest() -> None:  # after every patch, so a killed bank still lists what it finished
            atomic_write_csv(output / MANIFEST, [_bank_row(p, config, *results[p.name]) for p in patches if p.name in results])

        def record(outcome: tuple[str, dict[str, Any] | None, str]) -> None:
            name, state, error = outcome
            results[name] = (state, error)
            if error:
                log.error("  %s failed: %s", name, error)
            else:
                log.info("  %s: done (%d scales, %.1f min)", name, len(state["shapes"]), sum(state["seconds"]) / 60)
            write_manifest()

        arguments = ([str(config.path)] * len(todo), todo, [pyramids[p.name] for p in todo])
        if workers == 1:
            for outcome in map(_train_one, *arguments, [0] * len(todo)):
                record(outcome)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
                for outcome in pool.map(_train_one, *arguments, [threads] * len(todo)):
                    record(outcome)
        write_manifest()
        failed = [name for name, (_, error) in results.items() if error]
        log.info("Bank: %d trained, %d failed → %s", len(results) - len(failed), len(failed), output / MANIFEST)
        log.info("Report: %s", write_command_report(config, output, "training"))
        return 2 if failed else 0

    @classmethod
    def _samples(cls, config: Config, count: int, seed: int) -> Iterable[tuple[dict[str, str], SourcePatch, list[np.ndarray], np.ndarray | None]]:
        """Per trained SinGAN: its bank row, source patch, `count` samples and the mask they carry (None: the label only)."""
        s = config.singan
        train_dir = config.need("dataset", "train_dir", "sampling the SinGAN bank (its source patches)")
        sources = {p.name: p for p in chosen_patches(config, train_dir, "train_dir")}
        inject = None
        if s.inject_image is not None:
            raw = read_image(s.inject_image)
            inject = raw.astype(np.float32) / float(np.iinfo(raw.dtype).max)
        for row in read_bank(config):
            patch = sources.get(row["patch"])
            if patch is None:
                raise DataError(f"{config.train.output_dir / MANIFEST}: {row['patch']} is not a chosen patch of {train_dir} any more.")
            model, _ = SinGAN.load(config.train.output_dir / row["folder"])
            if s.injection_scale >= model.pyramid.scales:
                raise config.error("singan", "injection_scale", f"{row['patch']}'s SinGAN has {model.pyramid.scales} scales (0 to "
                                   f"{model.pyramid.scales - 1})")
            images = model.sample(count, patch_seed(seed, patch.name), injection_scale=s.injection_scale,
                                  inject=patch.image if inject is None else resize_image(inject, patch.image.shape),
                                  size=tuple(s.sample_size))
            mask = patch.mask if s.injection_scale > 0 and inject is None else None
            yield row, patch, images, mask

    @classmethod
    def infer(cls, config: Config, output_dir: Path) -> int:
        count, seed, s = config.infer.num_samples, config.infer.seed, config.singan
        rows = []
        for bank_row, patch, images, mask in cls._samples(config, count, seed):
            for index, image in enumerate(images):
                name = sample_file_name(patch, seed, index)
                write_png(output_dir / "images" / name, _to_pixels(image, patch.max_value))
                if mask is not None:
                    write_png(output_dir / "masks" / name, (resize_image(mask, image.shape) >= 0.5).astype(np.uint8) * 255)
                rows.append({"image": name, "source_patch": patch.name, "source_image": bank_row["source_image"],
                             "class": bank_row["class"], "injection_scale": s.injection_scale, "seed": seed, "index": index,
                             "task": "singan", "status": "written", **({"mask": name} if mask is not None else {})})
        atomic_write_csv(output_dir / "manifest.csv", rows)
        log.info("Sampled %d images from %d SinGANs into %s", len(rows), len(rows) // max(count, 1), output_dir / "images")
        return 0

    @classmethod
    def evaluate(cls, config: Config, output_dir: Path) -> int:
        bank = read_bank(config)
        per_patch = max(2, math.ceil(config.eval.num_samples / len(bank)))
        extractor = configured_extractor(config)
        drawn = [(row, patch, np.stack([resize_image(image, patch.image.shape) for image in images]))
                 for row, patch, images, _ in cls._samples(config, per_patch, config.infer.seed)]
        rng = np.random.default_rng(config.infer.seed)
        rows = []
        for bank_row, patch, stack in drawn:
            closeness = ssim_matrix(stack, patch.image[None])[:, 0]
            pairs = ssim_matrix(stack, stack)[np.triu_indices(len(stack), 1)]
            noise = np.clip(rng.normal(patch.image.mean(), patch.image.std(), stack.shape), 0.0, 1.0).astype(np.float32)
            others = [other.image for _, other, _ in drawn if other.name != patch.name]
            rows.append({"patch": patch.name, "class": bank_row["class"], "samples": len(stack),
                         "sifid": float(np.mean(sifid(extractor, stack, patch.image))),
                         # references: what SIFID is for noise of the source's mean/std, and for the bank's other sources
                         "sifid_noise": float(np.mean(sifid(extractor, noise, patch.image))),
                         "sifid_other_sources": float(np.mean(sifid(extractor, np.stack(others), patch.image))) if others else "",
                         "diversity_pixel_std": pixel_diversity(stack, patch.image),
                         "pairwise_ssim": float(pairs.mean()), "ssim_to_source_mean": float(closeness.mean()),
                         "ssim_to_source_max": float(closeness.max()), "reconstruction_rmse": float(bank_row["reconstruction_rmse"])})
        samples, sources = [stack for _, _, stack in drawn], [patch.image for _, patch, _ in drawn]
        mean = {key: float(np.mean([row[key] for row in rows])) if rows[0][key] != "" else ""
                for key in rows[0] if key not in ("patch", "class")}
        atomic_write_csv(output_dir / "singan.csv", [*rows, {"patch": "mean", "class": "", **mean}])
        log.info("SinGAN bank (%d SinGANs, %d samples each, %s features): SIFID %.4f (noise %.4f), pixel diversity %.3f, pairwise SSIM %.3f, "
                 "SSIM to source %.3f (max %.3f), reconstruction RMSE %.4f → %s", len(rows), per_patch, extractor.name, mean["sifid"],
                 mean["sifid_noise"],
                 mean["diversity_pixel_std"], mean["pairwise_ssim"], mean["ssim_to_source_mean"], mean["ssim_to_source_max"],
                 mean["reconstruction_rmse"], output_dir / "singan.csv")
        test_dir = config.dataset.test_dir
        if test_dir is None:
            log.warning("The synthetic-image evaluation against real patches is skipped: [dataset] test_dir is not set in %s.", config.path)
            return 0
        real = chosen_patches(config, test_dir, "test_dir")
        names = [sample_file_name(patch, config.infer.seed, i) for _, patch, stack in drawn for i in range(len(stack))]
        score_synthetic(config, output_dir, SyntheticArms(
            generated={"generator": np.concatenate(samples)}, names=names, real=np.stack([p.image for p in real]),
            real_names=[p.name for p in real], real_train=np.stack(sources)))
        return 0


def _to_pixels(image: np.ndarray, max_value: int) -> np.ndarray:
    return np.round(np.clip(image, 0.0, 1.0) * max_value).astype(np.uint16 if max_value > 255 else np.uint8)

"""Training streams: draw `i` of every sampler depends only on (seed, i), so a resumed run sees the stream it would have seen.

The rules the streams share live here once: the flip/rot90 augmentation (`random_orientation`), the
resumable tf.data pipeline over draw numbers (`index_stream`), and the SR crop rule (`CropRule`) that
both SR storage paths cut with: images decoded in RAM (CropSampler) or streamed from TFRecord shards
(ShardSampler). A rule takes its random choices from `Draws`: a numpy Generator one after another
(`GeneratorDraws`), or fixed slots of a block of uniforms (`SlotDraws`, the TFRecord stream).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..errors import DataError
from .sr_dataset import SRSplit, full_scale_for, load_split, lr_subdir_for
from .sr_tfrecord import FEATURES, ShardSet, ensure_shards

MAX_LESION_POINTS = 20000


class Draws(Protocol):
    """Where a rule's random choices come from; `name` says which choice it is."""

    def uniform(self, name: str) -> float: ...

    def integer(self, name: str, low: int, high: int) -> int: ...

    def coin(self, name: str) -> bool: ...


class GeneratorDraws:
    """Choices drawn one after another from a numpy Generator, in the order the rule asks for them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def uniform(self, name: str) -> float:
        return float(self.rng.random())

    def integer(self, name: str, low: int, high: int) -> int:
        return int(self.rng.integers(low, high))

    def coin(self, name: str) -> bool:
        return bool(self.rng.integers(2))


class SlotDraws:
    """Choices read from a row of uniforms in [0, 1), one fixed slot per choice (`SLOTS`), so a whole
    block can be drawn up front by stateless TF ops, whichever choices the rule then uses."""

    SLOTS = ("point", "jitter_y", "jitter_x", "y", "x", "lesion", "turns", "flip")

    def __init__(self, row: np.ndarray) -> None:
        self.row = row

    def uniform(self, name: str) -> float:
        return float(self.row[self.SLOTS.index(name)])

    def integer(self, name: str, low: int, high: int) -> int:
        span = high - low
        return low + min(int(np.floor(self.uniform(name) * span)), span - 1)

    def coin(self, name: str) -> bool:
        return self.uniform(name) < 0.5


def random_orientation(draws: Draws, *images: np.ndarray) -> tuple[np.ndarray, ...]:
    """The images turned alike into one of the 8 flips/90° rotations (aligned arrays stay aligned).

    Rotates by 0-3 quarter turns, then flips left-right on a coin: the draw order every seeded
    stream was made with. Returns views; callers make them contiguous.
    """
    turns, flip = draws.integer("turns", 0, 4), draws.coin("flip")
    turned = (np.rot90(image, turns) for image in images)
    return tuple(image[:, ::-1] if flip else image for image in turned)


def whole_batches(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Batches of exactly `batch_size` (train steps are traced for one static shape), prefetched."""
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def index_stream(draw: Callable[[int], Any], spec: tf.TensorSpec | tuple[tf.TensorSpec, ...],
                 batch_size: int, start_index: int) -> tf.data.Dataset:
    """Endless batches of draw(start_index), draw(start_index + 1), ...

    `draw` is a pure numpy function of the draw number, so the stream is deterministic however many
    calls run in parallel, and a resumed run starts at its step's draw. `spec`: dtype and shape of one
    draw, a tuple when it returns several arrays.
    """
    specs = spec if isinstance(spec, tuple) else (spec,)

    def load(index: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, ...]:
        drawn = tf.numpy_function(draw, [index], [s.dtype for s in specs], stateful=False)
        shaped = tuple(tf.ensure_shape(tensor, s.shape) for tensor, s in zip(drawn, specs))
        return shaped if isinstance(spec, tuple) else shaped[0]

    stream = tf.data.Dataset.counter(start_index).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return whole_batches(stream, batch_size)


class PatchSampler:
    """Patch `i` of the stream depends only on (seed, i), so resumed runs see the same data.

    Patches are (N, H, W) or channel-stacked (N, H, W, C), e.g. image and mask, which then flip together.

    With synthetic patches, each draw is synthetic with probability ratio / (1 + ratio), so the stream
    holds `synthetic_ratio` synthetic images per real one on average (exactly reproducible for a seed).
    """

    def __init__(self, patches: np.ndarray, flips: bool, seed: int, synthetic: np.ndarray | None = None,
                 synthetic_ratio: float = 0.0) -> None:
        self.patches = patches
        self.flips = flips
        self.seed = seed
        self.synthetic = synthetic if synthetic is not None and len(synthetic) and synthetic_ratio > 0 else None
        self.synthetic_fraction = synthetic_ratio / (1.0 + synthetic_ratio) if self.synthetic is not None else 0.0

    def sample(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(index)])
        pool = self.synthetic if self.synthetic is not None and rng.random() < self.synthetic_fraction else self.patches
        patch = pool[int(rng.integers(len(pool)))]
        if self.flips:
            (patch,) = random_orientation(GeneratorDraws(rng), patch)
        return np.ascontiguousarray(patch if patch.ndim == 3 else patch[..., None])

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        shape = self.patches.shape[1:] if self.patches.ndim == 4 else (*self.patches.shape[1:], 1)
        return index_stream(self.sample, tf.TensorSpec(shape, tf.float32), batch_size, start_index)


class ClassBalancedSampler:
    """Draw `i` picks a class with the given weights, then a patch of that class; it depends only on (seed, i).

    So every batch holds the classes in the configured proportions whatever their frequency in the
    data, and a resumed run sees the same stream from its step index (like PatchSampler).
    """

    def __init__(self, patches: np.ndarray, labels: np.ndarray, weights: list[float], flips: bool, seed: int) -> None:
        self.patches = patches
        self.labels = np.asarray(labels, dtype=np.int32)
        self.members = [np.flatnonzero(self.labels == c) for c in range(len(weights))]
        self.probabilities = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        self.flips = flips
        self.seed = seed

    def sample(self, index: int) -> tuple[np.ndarray, np.int32]:
        rng = np.random.default_rng([self.seed, int(index)])
        label = int(rng.choice(len(self.probabilities), p=self.probabilities))
        patch = self.patches[self.members[label][int(rng.integers(len(self.members[label])))]]
        if self.flips:
            (patch,) = random_orientation(GeneratorDraws(rng), patch)
        return np.ascontiguousarray(patch)[..., None], np.int32(label)

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        size = self.patches.shape[1]
        spec = (tf.TensorSpec((size, size, 1), tf.float32), tf.TensorSpec((), tf.int32))
        return index_stream(self.sample, spec, batch_size, start_index)


def lesion_points(mask: np.ndarray | None) -> np.ndarray | None:
    """(y, x) of a mask's lesion pixels, evenly thinned to MAX_LESION_POINTS (plenty to centre crops on); None without any."""
    if mask is None or not mask.any():
        return None
    points = np.argwhere(mask > 0)
    if len(points) > MAX_LESION_POINTS:
        points = points[np.linspace(0, len(points) - 1, MAX_LESION_POINTS).astype(np.int64)]
    return points


@dataclass(frozen=True)
class CropRule:
    """How SR training cuts an aligned LR/HR/mask crop from one image, whichever storage the image came from.

    When the image has lesion pixels, the crop is centred on a random one with probability
    `lesion_fraction` (`[dataset] lesion_crop_fraction`), shifted by up to a quarter of its side so the
    lesion is not always in the middle; otherwise its position is uniform. `flips`: then turned by
    `random_orientation`. With `min_mean` (`[dataset] min_crop_mean`) a uniformly placed crop whose HR
    mean is below that fraction of full scale moves along a low-discrepancy sequence from its first
    position (MOVES tries, else the brightest is kept), so film background does not fill the batches;
    the tries come from the same two draws, so crop `i` still depends only on (seed, i).
    """

    MOVES = 10
    STEP = (0.6180339887, 0.7548776662)  # R2 sequence steps: successive tries spread over the image

    patch_size: int  # HR side; the LR side is patch_size / scale
    scale: int
    lesion_fraction: float
    flips: bool
    min_mean: float = 0.0

    def __post_init__(self) -> None:
        if self.patch_size % self.scale:  # so LR crop × scale = HR crop exactly
            raise DataError(f"patch_size {self.patch_size} must be a multiple of the scale {self.scale}.")

    @property
    def shapes(self) -> tuple[tuple[int, int, int], ...]:
        """Shapes of one (lr, hr, mask) crop."""
        lp, hp = self.patch_size // self.scale, self.patch_size
        return (lp, lp, 1), (hp, hp, 1), (hp, hp, 1)

    def crop(self, draws: Draws, lr: np.ndarray, hr: np.ndarray, mask: np.ndarray | None,
             points: np.ndarray | None, full_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One (lr, hr, mask) crop as contiguous (side, side, 1) arrays of the images' dtypes (zeros for no mask).

        `points`: the image's `lesion_points(mask)`, computed once per image by the caller; `full_scale`:
        white in the arrays' values (1 for [0, 1] floats), for `min_mean`.
        """
        s, lp = self.scale, self.patch_size // self.scale
        max_y, max_x = lr.shape[0] - lp, lr.shape[1] - lp
        if points is not None and draws.uniform("lesion") < self.lesion_fraction:
            cy, cx = points[draws.integer("point", 0, len(points))] // s
            y = int(np.clip(cy - lp // 2 + draws.integer("jitter_y", -lp // 4, lp // 4 + 1), 0, max_y))
            x = int(np.clip(cx - lp // 2 + draws.integer("jitter_x", -lp // 4, lp // 4 + 1), 0, max_x))
        elif self.min_mean > 0:
            y, x = self._bright_position(draws.uniform("y"), draws.uniform("x"), hr, max_y, max_x, self.min_mean * full_scale)
        else:
            y, x = draws.integer("y", 0, max_y + 1), draws.integer("x", 0, max_x + 1)
        lr_crop = lr[y : y + lp, x : x + lp]
        hr_crop = hr[y * s : (y + lp) * s, x * s : (x + lp) * s]
        mask_crop = mask[y * s : (y + lp) * s, x * s : (x + lp) * s] if mask is not None else np.zeros_like(hr_crop)
        crops = (lr_crop, hr_crop, mask_crop)
        if self.flips:
            crops = random_orientation(draws, *crops)
        return tuple(np.ascontiguousarray(a)[..., None] for a in crops)  # type: ignore[return-value]


    def _bright_position(self, u: float, v: float, hr: np.ndarray, max_y: int, max_x: int, threshold: float) -> tuple[int, int]:
        """The first of MOVES positions from the uniforms (u, v) whose HR crop mean reaches `threshold`, else the brightest."""
        s, hp = self.scale, self.patch_size
        best, best_mean = (0, 0), -1.0
        for move in range(self.MOVES):
            y = min(int(((u + move * self.STEP[0]) % 1.0) * (max_y + 1)), max_y)
            x = min(int(((v + move * self.STEP[1]) % 1.0) * (max_x + 1)), max_x)
            mean = float(hr[y * s : y * s + hp, x * s : x * s + hp].mean())
            if mean >= threshold:
                return y, x
            if mean > best_mean:
                best, best_mean = (y, x), mean
        return best


class CropSampler:
    """Aligned LR/HR/mask crops of a split decoded in RAM (`[dataset] storage = "memory"`); crop `i` depends only on (seed, i)."""

    def __init__(self, split: SRSplit, patch_size: int, lesion_fraction: float, flips: bool, seed: int,
                 min_mean: float = 0.0) -> None:
        self.split = split
        self.rule = CropRule(patch_size, split.scale, lesion_fraction, flips, min_mean)
        self.seed = seed
        self.lesion_points = [lesion_points(m) for m in split.masks]

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(index)])
        image = int(rng.integers(len(self.split.hr)))
        return self.rule.crop(GeneratorDraws(rng), self.split.lr[image], self.split.hr[image], self.split.masks[image], self.lesion_points[image])

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        """An endless batched dataset of (lr, hr, mask) starting at crop number `start_index`."""
        spec = tuple(tf.TensorSpec(shape, tf.float32) for shape in self.rule.shapes)
        return index_stream(self.crop, spec, batch_size, start_index)


class UnpairedCropSampler:
    """Crop pairs (one of domain A, one of domain B, drawn independently) for unpaired translation; pair `i` depends
    only on (seed, i). Crops are cut by CropRule at scale 1: uniform positions, `min_mean` moves them off film
    background, flips/rot90 when `flips`."""

    def __init__(self, domain_a: list[np.ndarray], domain_b: list[np.ndarray], side: int, flips: bool, seed: int,
                 min_mean: float = 0.0) -> None:
        self.domains = (domain_a, domain_b)
        self.rule = CropRule(side, 1, 0.0, flips, min_mean)
        self.seed = seed

    def crop(self, images: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        image = images[int(rng.integers(len(images)))]
        return self.rule.crop(GeneratorDraws(rng), image, image, None, None)[1]

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(index)])
        return self.crop(self.domains[0], rng), self.crop(self.domains[1], rng)

    def fixed(self, domain: int, count: int, seed: int) -> np.ndarray:
        """`count` crops of one domain, (count, side, side) — the same for every epoch of a run (validation, tiles).

        The images are taken in a seeded order, each once before any twice, so the first crops show different images.
        """
        rng = np.random.default_rng([seed, domain])
        images = self.domains[domain]
        order = rng.permutation(len(images))
        return np.stack([self.rule.crop(GeneratorDraws(rng), image, image, None, None)[1][..., 0]
                         for image in (images[order[i % len(images)]] for i in range(count))])

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        spec = tf.TensorSpec(self.rule.shapes[1], tf.float32)
        return index_stream(self.pair, (spec, spec), batch_size, start_index)


class ShardSampler:
    """Aligned LR/HR/mask crops streamed from TFRecord shards (`[dataset] storage = "tfrecord"`), cut by CropSampler's CropRule.

    Records are shuffled (seeded), numbered and PNG-decoded by TF ops in parallel, outside the GIL: the
    bulk of the work. Each record's `crops_per_image` crops are then cut by the same numpy CropRule as
    in-memory crops (through tf.numpy_function), so crop placement, lesion centring and flips cannot
    drift apart between the storage paths. Their random choices are a block of stateless TF uniforms
    seeded by (seed, record number), read through SlotDraws: crop `i` depends only on (seed, i), and
    the stream is the one earlier TFRecord runs were made with.
    """

    def __init__(self, shards: ShardSet, patch_size: int, lesion_fraction: float, flips: bool, seed: int,
                 crops_per_image: int, shuffle_buffer: int, data_range: float, min_mean: float = 0.0) -> None:
        self.shards = shards
        self.rule = CropRule(patch_size, shards.scale, lesion_fraction, flips, min_mean)
        self.seed = seed
        self.crops_per_image = crops_per_image
        self.shuffle_buffer = shuffle_buffer
        self.full_scale = full_scale_for(data_range, shards.dtype)

    def _records(self) -> tf.data.Dataset:
        """Endless (record number, serialized example): shard order reshuffled every pass, records interleaved and shuffled."""
        files = [str(path) for path in self.shards.files]
        return (
            tf.data.Dataset.from_tensor_slices(files)
            .shuffle(len(files), seed=self.seed, reshuffle_each_iteration=True)
            .repeat()
            .interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4), block_length=1)
            .shuffle(self.shuffle_buffer, seed=self.seed + 1, reshuffle_each_iteration=True)
            .enumerate()
        )

    def _cut(self, uniforms: np.ndarray, lr: np.ndarray, hr: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The crops of one decoded record (H, W, 1 arrays at the stored bit depth), one per row of `uniforms`,
        normalised to [0, 1] float32."""
        lr, hr, mask = lr[..., 0], hr[..., 0], mask[..., 0]
        points = lesion_points(mask)
        crops = [self.rule.crop(SlotDraws(row), lr, hr, mask, points, self.full_scale) for row in uniforms]
        lr_crops, hr_crops, mask_crops = (np.stack(c) for c in zip(*crops))
        return lr_crops.astype(np.float32) / self.full_scale, hr_crops.astype(np.float32) / self.full_scale, (mask_crops > 0).astype(np.float32)

    def crops(self, index: tf.Tensor, record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`crops_per_image` (lr, hr, mask) crops of one record, a pure function of (seed, index, record)."""
        dtype = tf.as_dtype(self.shards.dtype)
        example = tf.io.parse_single_example(record, FEATURES)
        hr = tf.io.decode_png(example["hr"], channels=1, dtype=dtype)
        lr = tf.io.decode_png(example["lr"], channels=1, dtype=dtype)
        mask = tf.cond(tf.strings.length(example["mask"]) > 0,
                       lambda: tf.io.decode_png(example["mask"], channels=1),
                       lambda: tf.zeros(tf.shape(hr), tf.uint8))
        seed = tf.stack([tf.constant(self.seed, tf.int64), index])
        uniforms = tf.random.stateless_uniform([self.crops_per_image, len(SlotDraws.SLOTS)], seed=seed, dtype=tf.float64)
        cut = tf.numpy_function(self._cut, [uniforms, lr, hr, mask], [tf.float32] * 3, stateful=False)
        return tuple(tf.ensure_shape(c, (self.crops_per_image, *shape)) for c, shape in zip(cut, self.rule.shapes))  # type: ignore[return-value]

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        """An endless batched dataset of (lr, hr, mask) starting at crop number `start_index`.

        Crop i is crop i % crops_per_image of record i // crops_per_image: whole records before the start
        are skipped undecoded, then the first record's leading crops.
        """
        crops = (
            self._records()
            .skip(start_index // self.crops_per_image)
            .map(self.crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .unbatch()
            .skip(start_index % self.crops_per_image)
        )
        return whole_batches(crops, batch_size)


def training_sampler(config: Config, train_dir: Path) -> CropSampler | ShardSampler:
    """The crops SR training draws, per `[dataset] storage`: the split decoded in RAM, or streamed from
    TFRecord shards (written on first use, rewritten when the sources change). Both have `.dataset(batch, start)`."""
    data, scale = config.dataset, config.model.scale
    classes = tuple(config.train.lesion_weight_classes)  # the lesion mask the pixel loss weights
    if data.storage == "memory":
        split = load_split(train_dir, scale, lr_subdir_for(config), data.data_range, data.patch_size, mask_classes=classes)
        return CropSampler(split, data.patch_size, data.lesion_crop_fraction, data.augment_flips, config.train.seed,
                           data.min_crop_mean)
    out_dir = data.tfrecord_dir or train_dir / f"tfrecords_x{scale}"
    try:
        shards = ensure_shards(train_dir, out_dir, scale, lr_subdir_for(config), data.patch_size, mask_classes=classes)
    except OSError as exc:
        raise config.error("dataset", "tfrecord_dir", f"cannot write TFRecord shards to {out_dir}: {exc.strerror or exc} "
                           "(set it to a writable folder with room for the PNG-compressed training set)") from None
    return ShardSampler(shards, data.patch_size, data.lesion_crop_fraction, data.augment_flips, config.train.seed,
                        data.crops_per_image, data.shuffle_buffer, data.data_range, data.min_crop_mean)

"""Super-resolution data: LR/HR pairs from dataset folders, as a deterministic, resumable tf.data pipeline.

Pairs come from a split folder's `images/` (HR) and either an LR subfolder paired by file name or
on-the-fly degradation with the same code `prepare` uses. Every training crop is a pure function
of (seed, crop index), so a resumed run continues with exactly the crops it would have seen.
Training images are decoded into RAM here (`storage = "memory"`) or streamed from TFRecord shards
(`storage = "tfrecord"`, sr_tfrecord.py) for sets larger than memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import tensorflow as tf

from ..errors import DataError
from ..core.logs import get_logger
from .degradation import DegradationSpec, degrade, trim_to_multiple
from .images import list_images, read_image, read_mask

if TYPE_CHECKING:
    from ..config.loader import Config
    from .sr_tfrecord import ShardSampler

log = get_logger("data")
MAX_LESION_POINTS = 20000


@dataclass
class SRSplit:
    """Decoded images of one split, normalised to [0, 1] float32."""

    names: list[str]
    hr: list[np.ndarray]
    lr: list[np.ndarray]
    masks: list[np.ndarray | None]
    data_range: float
    dtype: np.dtype
    scale: int


def degradation_for(folder: Path, scale: int) -> DegradationSpec:
    """The degradation `prepare` recorded for this dataset (manifest.json), else plain bicubic."""
    for manifest in (folder / "manifest.json", folder.parent / "manifest.json"):
        if manifest.is_file():
            recorded = json.loads(manifest.read_text()).get("sr", {}).get(f"x{scale}")
            if recorded:
                d = recorded["degradation"]
                return DegradationSpec(d["name"], int(d["scale"]), float(d["blur_sigma"]), float(d["noise_std"]))
    return DegradationSpec("bicubic", scale)


def lr_subdir_for(config) -> str:
    """`[dataset] lr_subdir` with `{scale}` filled in, so one pattern ("lr_x{scale}") serves ×2 and ×4 configs."""
    return config.dataset.lr_subdir.replace("{scale}", str(config.model.scale))


@dataclass
class SourcePair:
    """One training image at its stored bit depth: HR trimmed to multiples of the scale, its LR partner and mask."""

    path: Path
    hr: np.ndarray
    lr: np.ndarray
    mask: np.ndarray | None


def check_crop_fits(path: Path, height: int, width: int, min_hr_size: int) -> None:
    """Training crops must fit inside every image."""
    if min(height, width) < min_hr_size:
        raise DataError(f"{path}: {width}x{height} is smaller than the {min_hr_size}-pixel training crop.")


def read_pair(path: Path, folder: Path, scale: int, lr_subdir: str, spec: DegradationSpec, min_hr_size: int = 0) -> SourcePair:
    """Read one HR image, its LR partner (by name) or its degradation, and its lesion mask when present."""
    hr = trim_to_multiple(read_image(path), scale)
    check_crop_fits(path, hr.shape[0], hr.shape[1], min_hr_size)
    if lr_subdir:
        lr_path = folder / lr_subdir / path.name
        if not lr_path.is_file():
            raise DataError(f"{lr_path}: LR partner of {path} not found (files are paired by name).")
        lr = read_image(lr_path)
        if lr.shape[0] * scale != hr.shape[0] or lr.shape[1] * scale != hr.shape[1]:
            raise DataError(f"{lr_path}: LR size {lr.shape[::-1]} × {scale} does not match HR size {hr.shape[::-1]}.")
    else:
        lr = degrade(hr, spec)
    mask_path = folder / "masks" / path.name
    mask = read_mask(mask_path)[: hr.shape[0], : hr.shape[1]] if mask_path.is_file() else None
    return SourcePair(path, hr, lr, mask)


def source_images(folder: Path) -> list[Path]:
    """The HR images of a split (`<folder>/images`), which must not be empty."""
    paths = list_images(folder / "images")
    if not paths:
        raise DataError(f"{folder / 'images'}: no images found.")
    return paths


def read_pairs(folder: Path, scale: int, lr_subdir: str, min_hr_size: int = 0) -> Iterator[SourcePair]:
    """`read_pair` over a split, one image decoded at a time; a split must have one bit depth."""
    spec = degradation_for(folder, scale)
    dtype = None
    for path in source_images(folder):
        pair = read_pair(path, folder, scale, lr_subdir, spec, min_hr_size)
        if dtype is None:
            dtype = pair.hr.dtype
        elif pair.hr.dtype != dtype:
            raise DataError(f"{path}: {pair.hr.dtype} image in a folder of {dtype} images; a split must have one bit depth.")
        yield pair


def full_scale_for(data_range: float, dtype: np.dtype) -> float:
    """The value that maps to 1.0: `[dataset] data_range`, else the bit depth's maximum."""
    return data_range or float(np.iinfo(dtype).max)


def load_split(folder: Path, scale: int, lr_subdir: str, data_range: float, min_hr_size: int = 0) -> SRSplit:
    """Read HR images, LR partners (by name) or degrade HR, and lesion masks when present."""
    pairs = list(read_pairs(folder, scale, lr_subdir, min_hr_size))
    dtype = pairs[0].hr.dtype
    full_scale = full_scale_for(data_range, dtype)
    return SRSplit(
        names=[p.path.stem for p in pairs],
        hr=[(p.hr.astype(np.float32) / full_scale) for p in pairs],
        lr=[(p.lr.astype(np.float32) / full_scale) for p in pairs],
        masks=[(p.mask > 0).astype(np.float32) if p.mask is not None else None for p in pairs],
        data_range=full_scale,
        dtype=np.dtype(dtype),
        scale=scale,
    )


def crop_sides(patch_size: int, scale: int) -> tuple[int, int]:
    """(HR, LR) crop sides; the HR side must divide by the scale so LR crop × scale = HR crop exactly."""
    if patch_size % scale:
        raise DataError(f"patch_size {patch_size} must be a multiple of the scale {scale}.")
    return patch_size, patch_size // scale


class CropSampler:
    """Draws aligned LR/HR/mask crops; crop `i` depends only on (seed, i)."""

    def __init__(self, split: SRSplit, patch_size: int, lesion_fraction: float, flips: bool, seed: int) -> None:
        self.split = split
        self.hr_patch, self.lr_patch = crop_sides(patch_size, split.scale)
        self.lesion_fraction = lesion_fraction
        self.flips = flips
        self.seed = seed
        self.lesion_points = [self._points(m) for m in split.masks]

    @staticmethod
    def _points(mask: np.ndarray | None) -> np.ndarray | None:
        if mask is None or not mask.any():
            return None
        points = np.argwhere(mask > 0)
        if len(points) > MAX_LESION_POINTS:
            points = points[np.linspace(0, len(points) - 1, MAX_LESION_POINTS).astype(np.int64)]
        return points

    def crop(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(index)])
        image = int(rng.integers(len(self.split.hr)))
        lr, hr, mask = self.split.lr[image], self.split.hr[image], self.split.masks[image]
        s, lp = self.split.scale, self.lr_patch
        max_y, max_x = lr.shape[0] - lp, lr.shape[1] - lp
        points = self.lesion_points[image]
        if points is not None and rng.random() < self.lesion_fraction:
            cy, cx = points[int(rng.integers(len(points)))] // s
            y = int(np.clip(cy - lp // 2 + rng.integers(-lp // 4, lp // 4 + 1), 0, max_y))
            x = int(np.clip(cx - lp // 2 + rng.integers(-lp // 4, lp // 4 + 1), 0, max_x))
        else:
            y, x = int(rng.integers(max_y + 1)), int(rng.integers(max_x + 1))
        lr_crop = lr[y : y + lp, x : x + lp]
        hr_crop = hr[y * s : (y + lp) * s, x * s : (x + lp) * s]
        mask_crop = mask[y * s : (y + lp) * s, x * s : (x + lp) * s] if mask is not None else np.zeros_like(hr_crop)
        if self.flips:
            turns, flip = int(rng.integers(4)), bool(rng.integers(2))
            lr_crop, hr_crop, mask_crop = (np.rot90(a, turns) for a in (lr_crop, hr_crop, mask_crop))
            if flip:
                lr_crop, hr_crop, mask_crop = (a[:, ::-1] for a in (lr_crop, hr_crop, mask_crop))
        return tuple(np.ascontiguousarray(a)[..., None] for a in (lr_crop, hr_crop, mask_crop))  # type: ignore[return-value]

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        """An endless batched dataset of (lr, hr, mask) starting at crop number `start_index`."""
        lp, hp = self.lr_patch, self.hr_patch

        def load(index: tf.Tensor):
            lr, hr, mask = tf.numpy_function(self.crop, [index], [tf.float32, tf.float32, tf.float32], stateful=False)
            return tf.ensure_shape(lr, (lp, lp, 1)), tf.ensure_shape(hr, (hp, hp, 1)), tf.ensure_shape(mask, (hp, hp, 1))

        return (
            tf.data.Dataset.counter(start_index)
            .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )


def training_sampler(config: Config, train_dir: Path) -> CropSampler | ShardSampler:
    """The crops SR training draws, per `[dataset] storage`: the split decoded in RAM, or streamed from
    TFRecord shards (written on first use, rewritten when the sources change). Both have `.dataset(batch, start)`."""
    data, scale = config.dataset, config.model.scale
    if data.storage == "memory":
        split = load_split(train_dir, scale, lr_subdir_for(config), data.data_range, data.patch_size)
        return CropSampler(split, data.patch_size, data.lesion_crop_fraction, data.augment_flips, config.train.seed)
    from .sr_tfrecord import ShardSampler, ensure_shards

    out_dir = data.tfrecord_dir or train_dir / f"tfrecords_x{scale}"
    try:
        shards = ensure_shards(train_dir, out_dir, scale, lr_subdir_for(config), data.patch_size)
    except OSError as exc:
        raise config.error("dataset", "tfrecord_dir", f"cannot write TFRecord shards to {out_dir}: {exc.strerror or exc} "
                           "(set it to a writable folder with room for the PNG-compressed training set)") from None
    return ShardSampler(shards, data.patch_size, data.lesion_crop_fraction, data.augment_flips, config.train.seed,
                        data.crops_per_image, data.shuffle_buffer, data.data_range)

"""Super-resolution data: LR/HR pairs from dataset folders, as a deterministic, resumable tf.data pipeline.

Pairs come from a split folder's `images/` (HR) and either an LR subfolder paired by file name or
on-the-fly degradation with the same code `prepare` uses. Every training crop is a pure function
of (seed, crop index), so a resumed run continues with exactly the crops it would have seen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..errors import DataError
from ..utils.logs import get_logger
from .degradation import DegradationSpec, degrade
from .images import list_images, read_image, read_mask

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


def load_split(folder: Path, scale: int, lr_subdir: str, data_range: float, min_hr_size: int = 0) -> SRSplit:
    """Read HR images, LR partners (by name) or degrade HR, and lesion masks when present."""
    paths = list_images(folder / "images")
    if not paths:
        raise DataError(f"{folder / 'images'}: no images found.")
    spec = degradation_for(folder, scale)
    names, hr_list, lr_list, masks = [], [], [], []
    dtype = None
    for path in paths:
        hr = read_image(path)
        if dtype is None:
            dtype = hr.dtype
        elif hr.dtype != dtype:
            raise DataError(f"{path}: {hr.dtype} image in a folder of {dtype} images; a split must have one bit depth.")
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        if min(hr.shape) < min_hr_size:
            raise DataError(f"{path}: {hr.shape[1]}x{hr.shape[0]} is smaller than the {min_hr_size}-pixel training crop.")
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
        mask = read_mask(mask_path) if mask_path.is_file() else None
        if mask is not None:
            mask = mask[: hr.shape[0], : hr.shape[1]]
        names.append(path.stem)
        hr_list.append(hr)
        lr_list.append(lr)
        masks.append(mask)
    full_scale = data_range or float(np.iinfo(dtype).max)
    return SRSplit(
        names=names,
        hr=[(h.astype(np.float32) / full_scale) for h in hr_list],
        lr=[(l.astype(np.float32) / full_scale) for l in lr_list],
        masks=[(m > 0).astype(np.float32) if m is not None else None for m in masks],
        data_range=full_scale,
        dtype=np.dtype(dtype),
        scale=scale,
    )


class CropSampler:
    """Draws aligned LR/HR/mask crops; crop `i` depends only on (seed, i)."""

    def __init__(self, split: SRSplit, patch_size: int, lesion_fraction: float, flips: bool, seed: int) -> None:
        if patch_size % split.scale:
            raise DataError(f"patch_size {patch_size} must be a multiple of the scale {split.scale}.")
        self.split = split
        self.hr_patch = patch_size
        self.lr_patch = patch_size // split.scale
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

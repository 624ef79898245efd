"""Super-resolution data: LR/HR pairs (and lesion masks) read from dataset folders.

Pairs come from a split folder's `images/` (HR) and either an LR subfolder paired by file name or
on-the-fly degradation with the same code `prepare` uses. A split is decoded into RAM here
(`load_split`) or written to TFRecord shards (sr_tfrecord.py) for sets larger than memory; the
training crops of both are drawn in samplers.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from ..config.loader import Config
from ..errors import DataError
from .degradation import DegradationSpec, degrade, trim_to_multiple
from .images import list_images, read_image, read_mask


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
    class_masks: dict[str, list[np.ndarray | None]] = field(default_factory=dict)  # per lesion class, when asked for


def degradation_for(folder: Path, scale: int) -> DegradationSpec:
    """The degradation `prepare` recorded for this dataset (manifest.json), else plain bicubic."""
    for manifest in (folder / "manifest.json", folder.parent / "manifest.json"):
        if manifest.is_file():
            recorded = json.loads(manifest.read_text()).get("sr", {}).get(f"x{scale}")
            if recorded:
                d = recorded["degradation"]
                return DegradationSpec(d["name"], int(d["scale"]), float(d["blur_sigma"]), float(d["noise_std"]))
    return DegradationSpec("bicubic", scale)


def lr_subdir_for(config: Config) -> str:
    """`[dataset] lr_subdir` with `{scale}` filled in, so one pattern ("lr_x{scale}") serves ×2 and ×4 configs."""
    return config.dataset.lr_subdir.replace("{scale}", str(config.model.scale))


@dataclass
class SourcePair:
    """One training image at its stored bit depth: HR trimmed to multiples of the scale, its LR partner and mask."""

    path: Path
    hr: np.ndarray
    lr: np.ndarray
    mask: np.ndarray | None
    class_masks: dict[str, np.ndarray | None] = field(default_factory=dict)


def mask_subdirs(classes: tuple[str, ...]) -> list[str]:
    """Where the lesion mask of `classes` is read from: their `masks_<class>/` folders, or `masks/` (any lesion) for none."""
    return [f"masks_{c}" for c in classes] or ["masks"]


def _lesion_mask(folder: Path, path: Path, classes: tuple[str, ...], full: np.ndarray, hr: np.ndarray) -> np.ndarray | None:
    """The union of the `classes`' masks of one image (see mask_subdirs), trimmed like its HR; None without any file."""
    union = None
    for subdir in mask_subdirs(classes):
        mask_path = folder / subdir / path.name
        if not mask_path.is_file():
            continue
        mask = read_mask(mask_path)
        if mask.shape != full.shape:
            raise DataError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {path} is "
                            f"{full.shape[1]}x{full.shape[0]} (masks are paired with images by file name).")
        union = mask if union is None else np.maximum(union, mask)
    return None if union is None else union[: hr.shape[0], : hr.shape[1]]


def check_crop_fits(path: Path, height: int, width: int, min_hr_size: int) -> None:
    """Training crops must fit inside every image."""
    if min(height, width) < min_hr_size:
        raise DataError(f"{path}: {width}x{height} is smaller than the {min_hr_size}-pixel training crop.")


def read_pair(path: Path, folder: Path, scale: int, lr_subdir: str, spec: DegradationSpec, min_hr_size: int = 0,
              mask_classes: tuple[str, ...] = (), class_masks: tuple[str, ...] = ()) -> SourcePair:
    """Read one HR image, its LR partner (by name) or its degradation, and its lesion mask when present.

    `mask_classes`: the lesion classes whose union is the mask (none: the any-lesion mask); `class_masks`:
    classes whose masks are also kept one by one (the per-class evaluation).
    """
    full = read_image(path)
    hr = trim_to_multiple(full, scale)
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
    return SourcePair(path, hr, lr, _lesion_mask(folder, path, mask_classes, full, hr),
                      {c: _lesion_mask(folder, path, (c,), full, hr) for c in class_masks})


def source_images(folder: Path) -> list[Path]:
    """The HR images of a split (`<folder>/images`), which must not be empty."""
    paths = list_images(folder / "images")
    if not paths:
        raise DataError(f"{folder / 'images'}: no images found.")
    return paths


def read_pairs(folder: Path, scale: int, lr_subdir: str, min_hr_size: int = 0,
               failures: list[str] | None = None, mask_classes: tuple[str, ...] = (),
               class_masks: tuple[str, ...] = ()) -> Iterator[SourcePair]:
    """`read_pair` over a split, one image decoded at a time; a split must have one bit depth.

    With a `failures` list, an image that cannot be used is recorded there (file and reason) and skipped,
    so a batch job finishes the good images; without one, the first problem raises. The masks: see read_pair.
    """
    spec = degradation_for(folder, scale)
    dtype = None
    for path in source_images(folder):
        try:
            pair = read_pair(path, folder, scale, lr_subdir, spec, min_hr_size, mask_classes, class_masks)
            if dtype is None:
                dtype = pair.hr.dtype
            elif pair.hr.dtype != dtype:
                raise DataError(f"{path}: {pair.hr.dtype} image in a folder of {dtype} images; a split must have one bit depth.")
        except DataError as error:
            if failures is None:
                raise
            failures.append(str(error))
            continue
        yield pair


def full_scale_for(data_range: float, dtype: np.dtype) -> float:
    """The value that maps to 1.0: `[dataset] data_range`, else the bit depth's maximum."""
    return data_range or float(np.iinfo(dtype).max)


def load_split(folder: Path, scale: int, lr_subdir: str, data_range: float, min_hr_size: int = 0,
               failures: list[str] | None = None, mask_classes: tuple[str, ...] = (),
               class_masks: tuple[str, ...] = ()) -> SRSplit:
    """Read HR images, LR partners (by name) or degrade HR, and lesion masks when present (`failures`, masks: see read_pairs)."""
    pairs = list(read_pairs(folder, scale, lr_subdir, min_hr_size, failures, mask_classes, class_masks))
    if not pairs:
        raise DataError(f"{folder}: none of its images can be used: " + "; ".join(failures or []))
    dtype = pairs[0].hr.dtype
    full_scale = full_scale_for(data_range, dtype)
    return SRSplit(
        names=[p.path.stem for p in pairs],
        hr=[(p.hr.astype(np.float32) / full_scale) for p in pairs],
        lr=[(p.lr.astype(np.float32) / full_scale) for p in pairs],
        masks=[_binary(p.mask) for p in pairs],
        data_range=full_scale,
        dtype=np.dtype(dtype),
        scale=scale,
        class_masks={c: [_binary(p.class_masks[c]) for p in pairs] for c in class_masks},
    )


def _binary(mask: np.ndarray | None) -> np.ndarray | None:
    return None if mask is None else (mask > 0).astype(np.float32)

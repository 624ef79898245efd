"""Patches: GAN patches (lesion-centred crops at several context zooms, healthy-tissue crops inside the
breast) and fixed-size SR pairs (HR tiles over the breast with the matching crops of the LR image)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.images import write_png
from ..data.lesions import SourceImage
from ..data.masks import GridTransform
from .settings import PrepareSettings


@dataclass
class PatchRecord:
    patch: str
    source_image: str
    split: str
    lesion_class: str
    box: list[int]  # x0, y0, x1, y1 in prepared-image pixels
    zoom: float
    severity: str = ""  # the lesion's, as its source writes it (MIAS B/M, CBIS BENIGN/MALIGNANT); empty when unknown or normal


def _window(cx: float, cy: float, side: int, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    height, width = shape
    if side > min(height, width):
        return None
    x0 = int(round(cx - side / 2))
    y0 = int(round(cy - side / 2))
    x0 = min(max(x0, 0), width - side)
    y0 = min(max(y0, 0), height - side)
    return x0, y0, x0 + side, y0 + side


def _save(settings: PrepareSettings, split: str, name: str, image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    size = settings.patch_size
    crop, crop_mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    if crop.shape[0] != size:
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        crop_mask = cv2.resize(crop_mask, (size, size), interpolation=cv2.INTER_NEAREST)
    folder = settings.output_dir / "patches" / split
    write_png(folder / "images" / name, crop)
    write_png(folder / "masks" / name, crop_mask)


def cut_patches(source: SourceImage, split: str, image: np.ndarray, masks: dict[str, np.ndarray],
                region: np.ndarray, transform: GridTransform, settings: PrepareSettings) -> list[PatchRecord]:
    records: list[PatchRecord] = []
    counters: dict[str, int] = {}
    for lesion in source.lesions:
        if not lesion.located:
            continue
        if lesion.center is not None:
            cx, cy = transform.point(*lesion.center)
        else:
            points = np.array([transform.point(x, y) for x, y in lesion.points])  # type: ignore[union-attr]
            cx, cy = points.mean(axis=0)
        index = counters.get(lesion.lesion_class, 0)
        counters[lesion.lesion_class] = index + 1
        for zoom in settings.patch_zooms:
            box = _window(cx, cy, int(round(settings.patch_size * zoom)), image.shape)
            if box is None:
                continue
            name = f"{source.image_id}_{lesion.lesion_class}{index}_z{zoom:g}.png"
            _save(settings, split, name, image, masks[lesion.lesion_class], box)
            records.append(PatchRecord(name, source.image_id, split, lesion.lesion_class, list(box), zoom,
                                       lesion.severity or ""))
    records.extend(_normal_patches(source, split, image, masks["any"], region, settings))
    return records


def _inside(integral: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> int:
    """Pixels set in a box, from the mask's integral image."""
    return int(integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0])


def _normal_patches(source: SourceImage, split: str, image: np.ndarray, lesion_mask: np.ndarray,
                    region: np.ndarray, settings: PrepareSettings) -> list[PatchRecord]:
    """Healthy tissue: windows mostly inside the breast that touch no lesion. None from an image with a
    lesion of unknown place (MIAS rows without coordinates, a CBIS abnormality without its ROI mask):
    any window could hold it."""
    side = settings.patch_size
    height, width = image.shape
    if settings.normal_patches_per_image == 0 or side > min(height, width) or not all(l.located for l in source.lesions):
        return []
    seed = settings.seed + int.from_bytes(source.image_id.encode()[-8:].rjust(8, b"\0"), "little") % (2**31)
    rng = np.random.default_rng(seed)
    integral_region = cv2.integral(region.astype(np.uint8))
    integral_lesion = cv2.integral((lesion_mask > 0).astype(np.uint8))
    records = []
    for _ in range(settings.normal_patches_per_image * 50):
        if len(records) == settings.normal_patches_per_image:
            break
        x0, y0 = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
        x1, y1 = x0 + side, y0 + side
        inside = _inside(integral_region, x0, y0, x1, y1)
        if _inside(integral_lesion, x0, y0, x1, y1) == 0 and inside >= settings.min_breast_fraction * side * side:
            name = f"{source.image_id}_normal{len(records)}.png"
            _save(settings, split, name, image, lesion_mask, (x0, y0, x1, y1))
            records.append(PatchRecord(name, source.image_id, split, "normal", [x0, y0, x1, y1], 1.0))
    return records


def sr_patch_boxes(region: np.ndarray, side: int, min_breast_fraction: float) -> list[tuple[int, int, int, int]]:
    """Non-overlapping `side`² tiles on a grid from the image origin that lie mostly inside the breast.

    `side` is a multiple of every SR scale, so each tile maps to whole LR pixels.
    """
    height, width = region.shape
    integral = cv2.integral(region.astype(np.uint8))
    boxes = []
    for y0 in range(0, height - side + 1, side):
        for x0 in range(0, width - side + 1, side):
            if _inside(integral, x0, y0, x0 + side, y0 + side) >= min_breast_fraction * side * side:
                boxes.append((x0, y0, x0 + side, y0 + side))
    return boxes


def write_sr_patches(folder: Path, image_id: str, image: np.ndarray, low: np.ndarray, scale: int,
                     boxes: list[tuple[int, int, int, int]]) -> None:
    """HR tiles to `folder/hr`, and the same regions of the LR image (not re-degraded tiles, so a pair
    is exactly a crop of the whole-image pair) to `folder/lr`, paired by name."""
    for x0, y0, x1, y1 in boxes:
        name = f"{image_id}_x{x0}_y{y0}.png"
        write_png(folder / "images" / name, image[y0:y1, x0:x1])
        write_png(folder / "lr" / name, low[y0 // scale : y1 // scale, x0 // scale : x1 // scale])

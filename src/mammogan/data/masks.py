"""Lesion masks drawn from annotation geometry (circles, polygons, points) on the prepared image grid."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .lesions import LESION_CLASSES, Lesion


@dataclass(frozen=True)
class GridTransform:
    """Maps source coordinates to prepared-image coordinates: scale, optional mirror, crop, resize."""

    source_scale: float  # annotation frame → source pixels
    source_width: int  # source image width (for the mirror)
    flip: bool
    crop_x0: int
    crop_y0: int
    resize: float  # cropped pixels → prepared pixels

    def point(self, x: float, y: float) -> tuple[float, float]:
        x, y = x * self.source_scale, y * self.source_scale
        if self.flip:
            x = self.source_width - 1 - x
        return (x - self.crop_x0) * self.resize, (y - self.crop_y0) * self.resize

    def length(self, value: float) -> float:
        return value * self.source_scale * self.resize


def draw_lesion(mask: np.ndarray, lesion: Lesion, transform: GridTransform, point_radius: float) -> bool:
    """Fill one lesion into `mask` (255); False when it has no geometry to draw."""
    if lesion.points and len(lesion.points) >= 3:
        polygon = np.array([transform.point(x, y) for x, y in lesion.points], dtype=np.float64)
        cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 255, lineType=cv2.LINE_8, shift=4)
        return True
    if lesion.center is not None:
        cx, cy = transform.point(*lesion.center)
        radius = transform.length(lesion.radius) if lesion.radius else point_radius
        radius = max(radius, 0.5)
        cv2.circle(mask, (int(round(cx * 16)), int(round(cy * 16))), int(round(radius * 16)), 255, thickness=-1, lineType=cv2.LINE_8, shift=4)
        return True
    if lesion.points:  # one or two points: draw each as a disk
        for x, y in lesion.points:
            px, py = transform.point(x, y)
            cv2.circle(mask, (int(round(px * 16)), int(round(py * 16))), int(round(max(point_radius, 0.5) * 16)), 255, -1, cv2.LINE_8, 4)
        return True
    return False


def class_masks(shape: tuple[int, int], lesions: list[Lesion], transform: GridTransform, point_radius: float) -> dict[str, np.ndarray]:
    """One 0/255 mask per lesion class plus 'any' (the union)."""
    masks = {name: np.zeros(shape, dtype=np.uint8) for name in LESION_CLASSES}
    for lesion in lesions:
        draw_lesion(masks[lesion.lesion_class], lesion, transform, point_radius)
    union = np.zeros(shape, dtype=np.uint8)
    for mask in masks.values():
        np.maximum(union, mask, out=union)
    masks["any"] = union
    return masks

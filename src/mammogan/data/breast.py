"""Breast-region geometry: which side the chest wall is on, and the crop box around the breast."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Box:
    """A crop box in pixels: x0, y0 inclusive, x1, y1 exclusive."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    def as_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def breast_mask(image: np.ndarray, threshold_fraction: float) -> np.ndarray:
    """The largest connected bright region (the breast); labels and markers are smaller and dropped."""
    low, high = float(image.min()), float(image.max())
    threshold = low + threshold_fraction * (high - low)
    binary = (image > threshold).astype(np.uint8)
    # Opening detaches thin bridges between the breast and burned-in labels before labelling.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.ones_like(binary, dtype=bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = labels == largest
    # Fill holes so dark fatty tissue inside the breast counts as breast.
    filled = region.astype(np.uint8)
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def crop_box(mask: np.ndarray, margin: int) -> Box:
    ys, xs = np.nonzero(mask)
    height, width = mask.shape
    if xs.size == 0:
        return Box(0, 0, width, height)
    return Box(
        max(int(xs.min()) - margin, 0),
        max(int(ys.min()) - margin, 0),
        min(int(xs.max()) + 1 + margin, width),
        min(int(ys.max()) + 1 + margin, height),
    )


def content_side(mask: np.ndarray) -> tuple[str, float]:
    """The side holding more breast area (the chest wall side) and how lopsided the mask is (0..1)."""
    columns = mask.sum(axis=0).astype(np.float64)
    half = mask.shape[1] // 2
    left, right = columns[:half].sum(), columns[mask.shape[1] - half :].sum()
    if max(left, right) == 0:
        return "left", 0.0
    return ("left" if left >= right else "right"), abs(left - right) / max(left, right)


def chest_wall_side(mask: np.ndarray, laterality: str | None) -> tuple[str, str]:
    """Where the chest wall is, and why we think so.

    Laterality (L/R) with the standard display convention (a left breast's chest wall on the image's
    left) is used when known; image content decides otherwise, and overrides a laterality that
    clearly contradicts it (non-standard display), because a wrong flip would misplace every mask.
    """
    side, lopsidedness = content_side(mask)
    if laterality in ("L", "R"):
        expected = "left" if laterality == "L" else "right"
        if side != expected and lopsidedness >= 0.3:
            return side, f"image content (contradicts laterality {laterality})"
        return expected, f"laterality {laterality}"
    return side, "image content"


def dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean mask by `pixels` (keeps the skin line when clearing the background)."""
    if pixels <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pixels + 1, 2 * pixels + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)

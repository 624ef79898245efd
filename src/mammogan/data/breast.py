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
    """The breast: the largest bright region once labels, markers and film-edge bands are removed.

    The threshold is `threshold_fraction` of the intensity range above the minimum, which suits the
    black background of digital mammograms. Digitised films have a grey, uneven background instead
    (the minimum is a redaction block or a hole), so when most of the darker Otsu class lies above
    that threshold, the level halfway between the background's median and Otsu's threshold is used.
    With no bright region at all, the whole image (prepare then keeps it uncropped).
    """
    region = _breast(image, threshold_fraction)
    return np.ones(image.shape, dtype=bool) if region is None else region


def breast_tissue(image: np.ndarray, threshold_fraction: float, margin: float) -> np.ndarray:
    """The breast (`breast_mask`) minus a `margin`-pixel band along the skin line and the image border.

    Evaluation measures tissue there: the skin line, the film border and the label-free rim around
    the breast are background-dominated and would dilute the score. Empty when nothing is left.
    """
    region = _breast(image, threshold_fraction)
    return np.zeros(image.shape, dtype=bool) if region is None else _eroded(region, margin)


def _breast(image: np.ndarray, threshold_fraction: float) -> np.ndarray | None:
    """breast_mask's region, None when nothing is brighter than the background."""
    step = max(1, min(image.shape) // 1024)  # the coarse steps run on a grid of about 1024 pixels
    threshold = _threshold(image, image[::step, ::step], threshold_fraction)
    binary = image > threshold
    coarse = binary[::step, ::step]
    # An opening by a disk ~3% of the image wide, with everything outside the image counted as
    # background, detaches labels and thin bright bands along the film edges from the breast.
    radius = max(2.0, 0.015 * min(coarse.shape))
    core = _largest_component(_within(_eroded(coarse, radius), radius))
    if not core.any():  # nothing survives the opening: a small or thin breast
        core = _largest_component(coarse)
        if not core.any():
            return None
    # Give back the breast outline the opening rounded off (skin line, nipple), but nothing further away.
    near = _within(core, 2 * radius).astype(np.uint8)
    if step > 1:
        near = cv2.resize(near, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    region = _largest_component(binary & near.astype(bool))
    # Fill holes so dark fatty tissue inside the breast counts as breast.
    filled = region.astype(np.uint8)
    contours, _ = cv2.findContours(filled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def _threshold(image: np.ndarray, sample: np.ndarray, fraction: float) -> float:
    """Breast/background level of `image`; the Otsu split is computed on `sample`, a subsampled copy."""
    low, high = float(image.min()), float(image.max())
    threshold = low + fraction * (high - low)
    if high <= low:
        return threshold
    levels = np.round((sample - low) / (high - low) * 255).astype(np.uint8)
    otsu_level, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    otsu = low + otsu_level / 255 * (high - low)
    dark = sample[sample <= otsu]
    if dark.size and float(np.percentile(dark, 25)) > threshold:  # grey background: a digitised film
        return (float(np.median(dark)) + otsu) / 2
    return threshold


def _eroded(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels farther than `radius` from the background and from the image border."""
    distance = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, cv2.DIST_MASK_5)
    return distance[1:-1, 1:-1] > radius


def _within(mask: np.ndarray, radius: float) -> np.ndarray:
    """Pixels at most `radius` from `mask` (a dilation by a disk, fast for large radii)."""
    if not mask.any():
        return mask.astype(bool)
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5) <= radius


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of `mask` (all False when the mask is empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, dtype=bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


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

"""Registered augmentations: each moves an image and all of its masks with one and the same map.

Every augmentation is `function(pair, params, rng, border) -> Pair`. Images are resampled bilinearly
at their own bit depth (uint8 or uint16, never through 8 bits); masks nearest-neighbour, so they keep
their label values. Maps are built with numpy and applied with OpenCV (`remap`, `warpAffine`), never
pixel by pixel in Python. Maps that do not depend on randomness are cached per (size, parameters);
random fields are drawn from `rng`, which the caller seeds per output, so image and masks share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Mapping, Sequence

import cv2
import numpy as np

from ..registry import AUGMENTATIONS

BORDER_MODES = {"constant": cv2.BORDER_CONSTANT, "reflect": cv2.BORDER_REFLECT_101, "replicate": cv2.BORDER_REPLICATE}


@dataclass(frozen=True)
class Border:
    """How pixels that come from outside the image are filled; masks are always filled with 0."""

    mode: str = "constant"
    value: float = 0.0  # fraction of the image's full range

    @property
    def flag(self) -> int:
        return BORDER_MODES[self.mode]

    def image_value(self, image: np.ndarray) -> float:
        return self.value * np.iinfo(image.dtype).max


@dataclass(frozen=True)
class Pair:
    """An image and the masks (same height and width) that must stay aligned with it."""

    image: np.ndarray
    masks: tuple[np.ndarray, ...] = ()


Params = Mapping[str, float]
Augmentation = Callable[[Pair, Params, np.random.Generator, Border], Pair]


def apply_steps(pair: Pair, steps: Sequence[tuple[str, Params]], seed: int, border: Border) -> Pair:
    """Apply registered augmentations one after another; every random draw comes from `seed`."""
    rng = np.random.default_rng(seed)
    for name, params in steps:
        augmentation: Augmentation = AUGMENTATIONS.get(name)
        pair = augmentation(pair, params, rng, border)
    return Pair(np.ascontiguousarray(pair.image), tuple(np.ascontiguousarray(m) for m in pair.masks))


# --- how a map is applied -------------------------------------------------------------------------


def _each(pair: Pair, index_op: Callable[[np.ndarray], np.ndarray]) -> Pair:
    """An exact re-indexing (flip, quarter turn): no interpolation, identical for image and masks."""
    return Pair(index_op(pair.image), tuple(index_op(m) for m in pair.masks))


def _remap(pair: Pair, map_x: np.ndarray, map_y: np.ndarray, border: Border) -> Pair:
    """Sample every array at (map_x, map_y): bilinear for the image, nearest for masks."""
    image = cv2.remap(pair.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=border.flag, borderValue=border.image_value(pair.image))
    masks = tuple(cv2.remap(m, map_x, map_y, cv2.INTER_NEAREST, borderMode=border.flag, borderValue=0) for m in pair.masks)
    return Pair(image, masks)


def _warp_affine(pair: Pair, inverse: np.ndarray, border: Border) -> Pair:
    """Warp by a 2x2 linear map about the image centre; `inverse` takes output to source offsets."""
    height, width = pair.image.shape
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    matrix = np.hstack([inverse, (centre - inverse @ centre)[:, None]])
    size = (width, height)
    image = cv2.warpAffine(pair.image, matrix, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=border.flag, borderValue=border.image_value(pair.image))
    masks = tuple(cv2.warpAffine(m, matrix, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                                 borderMode=border.flag, borderValue=0) for m in pair.masks)
    return Pair(image, masks)


def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cached maps are shared between outputs: make accidental writes fail loudly."""
    for array in arrays:
        array.flags.writeable = False
    return arrays


# --- geometric augmentations ----------------------------------------------------------------------


@AUGMENTATIONS.register("hflip")
def hflip(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Mirror left ↔ right."""
    return _each(pair, lambda a: a[:, ::-1])


@AUGMENTATIONS.register("vflip")
def vflip(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Mirror top ↔ bottom."""
    return _each(pair, lambda a: a[::-1, :])


@AUGMENTATIONS.register("rotation")
def rotation(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Rotate counter-clockwise by `angle` degrees about the centre, keeping the canvas size.

    Quarter turns that fit the canvas are done by exact re-indexing (no interpolation blur).
    """
    angle = params["angle"] % 360.0
    height, width = pair.image.shape
    quarters = angle / 90.0
    if quarters.is_integer() and (quarters % 2 == 0 or height == width):
        return _each(pair, lambda a: np.rot90(a, int(quarters)))
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    # Output → source for a rotation that looks counter-clockwise on screen (y axis points down).
    return _warp_affine(pair, np.array([[cos, -sin], [sin, cos]]), border)


@AUGMENTATIONS.register("shear")
def shear(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Shear about the centre: x += x_factor·(y − cy), y += y_factor·(x − cx)."""
    forward = np.array([[1.0, params["x"]], [params["y"], 1.0]])
    return _warp_affine(pair, np.linalg.inv(forward), border)


@AUGMENTATIONS.register("shrink")
def shrink(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Scale by `ratio` (area-averaged for the image) and pad back to the original size, centred."""
    height, width = pair.image.shape
    new_h, new_w = max(1, round(height * params["ratio"])), max(1, round(width * params["ratio"]))
    top, left = (height - new_h) // 2, (width - new_w) // 2
    pads = (top, height - new_h - top, left, width - new_w - left)

    def place(array: np.ndarray, interpolation: int, value: float) -> np.ndarray:
        small = cv2.resize(array, (new_w, new_h), interpolation=interpolation)
        return cv2.copyMakeBorder(small, *pads, border.flag, value=value)

    image = place(pair.image, cv2.INTER_AREA, border.image_value(pair.image))
    return Pair(image, tuple(place(m, cv2.INTER_NEAREST_EXACT, 0) for m in pair.masks))


@lru_cache(maxsize=16)
def radial_map(height: int, width: int, centre_x: float, centre_y: float, radius: float,
               exponent: float) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
    """Source coordinates of a barrel (exponent > 0) or pincushion (< 0) distortion.

    Inside a disk of `radius` (fraction of the shorter side) around the centre (fractions of width
    and height), a point at distance d samples the source at d·sin(π/2 · d/R)^exponent; outside the
    disk the map is the identity, so only the disk's bounding box (y0, y1, x0, x1) is returned.
    Returns None when the disk misses the image.
    """
    cx, cy = centre_x * width - 0.5, centre_y * height - 0.5
    r = radius * min(height, width)
    y0, y1 = max(0, math.floor(cy - r)), min(height, math.ceil(cy + r) + 1)
    x0, x1 = max(0, math.floor(cx - r)), min(width, math.ceil(cx + r) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    dx = np.arange(x0, x1, dtype=np.float64)[None, :] - cx
    dy = np.arange(y0, y1, dtype=np.float64)[:, None] - cy
    distance = np.sqrt(dx * dx + dy * dy)
    with np.errstate(divide="ignore"):
        factor = np.sin(np.pi / 2 * np.minimum(distance / r, 1.0)) ** exponent
    factor[distance == 0] = 1.0  # the centre stays put (0 · inf for pincushion)
    map_x = (cx + dx * factor).astype(np.float32)
    map_y = (cy + dy * factor).astype(np.float32)
    return (y0, y1, x0, x1), *_frozen(map_x, map_y)


def _radial(pair: Pair, params: Params, exponent: float, border: Border) -> Pair:
    height, width = pair.image.shape
    found = radial_map(height, width, params["cx"], params["cy"], params["radius"], exponent)
    if found is None:
        return pair
    (y0, y1, x0, x1), map_x, map_y = found
    inside = _remap(pair, map_x, map_y, border)

    def paste(full: np.ndarray, box: np.ndarray) -> np.ndarray:
        out = full.copy()
        out[y0:y1, x0:x1] = box
        return out

    return Pair(paste(pair.image, inside.image), tuple(paste(m, b) for m, b in zip(pair.masks, inside.masks)))


@AUGMENTATIONS.register("barrel")
def barrel(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Barrel distortion (magnifies around the centre) of strength `amount` inside `radius`."""
    return _radial(pair, params, params["amount"], border)


@AUGMENTATIONS.register("pincushion")
def pincushion(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Pincushion distortion (shrinks towards the centre) of strength `amount` inside `radius`."""
    return _radial(pair, params, -params["amount"], border)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, sigma: float, rms: float) -> np.ndarray:
    """White noise smoothed by a Gaussian of `sigma` pixels, scaled to the given RMS.

    The noise is drawn and scaled on a grid sigma/4 pixels coarse, then upsampled: the same smooth
    field at a fraction of the cost of blurring full-size noise with a wide kernel.
    """
    step = max(1, int(sigma / 4))
    rows, cols = -(-height // step) + 1, -(-width // step) + 1
    field = cv2.GaussianBlur(rng.standard_normal((rows, cols), dtype=np.float32), (0, 0), sigma / step,
                             borderType=cv2.BORDER_REFLECT_101)
    field *= np.float32(rms / max(float(np.sqrt(np.mean(field * field))), 1e-12))
    return cv2.resize(field, (width, height), interpolation=cv2.INTER_LINEAR)


def _displace(pair: Pair, shift_x: np.ndarray, shift_y: np.ndarray, border: Border) -> Pair:
    """Move every pixel by (shift_x, shift_y): float32 fields the caller hands over (made into maps in place)."""
    height, width = pair.image.shape
    shift_x += np.arange(width, dtype=np.float32)[None, :]
    shift_y += np.arange(height, dtype=np.float32)[:, None]
    return _remap(pair, shift_x, shift_y, border)


@AUGMENTATIONS.register("elastic")
def elastic(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Elastic deformation: a random displacement field of RMS ≈ `alpha` px, smooth over `sigma` px."""
    height, width = pair.image.shape
    sigma, alpha = params["sigma"], params["alpha"]
    shift_x = _smooth_noise(rng, height, width, sigma, alpha)
    shift_y = _smooth_noise(rng, height, width, sigma, alpha)
    return _displace(pair, shift_x, shift_y, border)


@AUGMENTATIONS.register("grid")
def grid(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Random grid distortion: the image is cut into `cells`×`cells` cells whose centres move by up to `strength` of a cell.

    Pixels in between follow bilinearly (beyond the outer centres, as the outer centres). Outer
    centres move only along the border, so no fill comes in from outside; strength < 0.5 keeps
    neighbouring centres from crossing, so the grid never folds.
    """
    height, width = pair.image.shape
    cells, strength = int(params["cells"]), params["strength"]
    move_x = (rng.uniform(-strength, strength, (cells, cells)) * width / cells).astype(np.float32)
    move_y = (rng.uniform(-strength, strength, (cells, cells)) * height / cells).astype(np.float32)
    move_x[:, [0, -1]] = 0.0
    move_y[[0, -1], :] = 0.0
    # cv2.resize interpolates bilinearly between cell centres ((k + 0.5)·L/cells − 0.5) and clamps beyond them.
    shift_x = cv2.resize(move_x, (width, height), interpolation=cv2.INTER_LINEAR)
    shift_y = cv2.resize(move_y, (width, height), interpolation=cv2.INTER_LINEAR)
    return _displace(pair, shift_x, shift_y, border)


# --- intensity augmentations (image only; masks pass through) -------------------------------------


def _curve(image: np.ndarray, function: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply an intensity curve on [0, 1] through a lookup table over every level of the dtype."""
    top = np.iinfo(image.dtype).max
    levels = np.arange(top + 1, dtype=np.float64) / top
    table = np.clip(np.round(function(levels) * top), 0, top).astype(image.dtype)
    return np.take(table, image)


@AUGMENTATIONS.register("gamma")
def gamma(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Gamma curve v ↦ v^gamma on the normalised intensity."""
    return Pair(_curve(pair.image, lambda v: v ** params["gamma"]), pair.masks)


@AUGMENTATIONS.register("contrast")
def contrast(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Stretch (factor > 1) or flatten (< 1) intensities around the image mean."""
    mean = float(pair.image.mean()) / np.iinfo(pair.image.dtype).max
    return Pair(_curve(pair.image, lambda v: mean + params["factor"] * (v - mean)), pair.masks)


@AUGMENTATIONS.register("brightness")
def brightness(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Shift intensities by `shift` of the full range."""
    return Pair(_curve(pair.image, lambda v: v + params["shift"]), pair.masks)


@AUGMENTATIONS.register("noise")
def noise(pair: Pair, params: Params, rng: np.random.Generator, border: Border) -> Pair:
    """Add Gaussian noise of std `std` (fraction of the full range)."""
    top = np.iinfo(pair.image.dtype).max
    noisy = pair.image.astype(np.float32) + rng.standard_normal(pair.image.shape, dtype=np.float32) * np.float32(params["std"] * top)
    return Pair(np.clip(np.rint(noisy), 0, top).astype(pair.image.dtype), pair.masks)

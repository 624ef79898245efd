"""HR → LR degradations, shared by data preparation, on-the-fly SR datasets and augmentation.

`bicubic` is MATLAB's antialiased `imresize` (the SR benchmarks' convention), implemented in numpy
so that prepared pairs and on-the-fly pairs are made by the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import cv2
import numpy as np

from ..registry import DEGRADATIONS


@dataclass(frozen=True)
class DegradationSpec:
    """Everything needed to redo a degradation (recorded in the dataset manifest)."""

    name: str
    scale: int
    blur_sigma: float = 0.0
    noise_std: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "scale": self.scale, "blur_sigma": self.blur_sigma, "noise_std": self.noise_std}


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


@lru_cache(maxsize=64)
def _contributions(in_length: int, out_length: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB imresize weights and (symmetric-padded) source indices for one axis."""
    kernel_width = 4.0
    antialias = scale < 1
    if antialias:
        kernel_width /= scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    taps = int(np.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps)[None, :]
    distance = u[:, None] - indices
    weights = scale * _cubic(scale * distance) if antialias else _cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    indices = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _resize_axis(image: np.ndarray, axis: int, out_length: int, scale: float) -> np.ndarray:
    weights, indices = _contributions(image.shape[axis], out_length, scale)
    moved = np.moveaxis(image, axis, 0)
    gathered = moved[indices]  # (out, taps, ...)
    result = np.einsum("ot,ot...->o...", weights, gathered)
    return np.moveaxis(result, 0, axis)


def imresize(image: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """MATLAB-compatible bicubic resize of a 2-D float array (antialiased when shrinking)."""
    image = image.astype(np.float64)
    height, width = image.shape
    out_h, out_w = out_shape
    order = (0, 1) if out_h / height <= out_w / width else (1, 0)  # MATLAB resizes the more-shrunk axis first
    result = image
    for axis in order:
        length = out_h if axis == 0 else out_w
        result = _resize_axis(result, axis, length, length / image.shape[axis])
    return result


def _restore_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _add_noise(values: np.ndarray, spec: DegradationSpec, full_scale: float, seed: int) -> np.ndarray:
    if spec.noise_std <= 0:
        return values
    rng = np.random.default_rng(seed)
    return values + rng.normal(0.0, spec.noise_std * full_scale, size=values.shape)


@DEGRADATIONS.register("bicubic")
def bicubic_degradation(image: np.ndarray, spec: DegradationSpec, seed: int = 0) -> np.ndarray:
    """Antialiased bicubic downsampling by `spec.scale` (HR sides must be multiples of the scale)."""
    height, width = image.shape
    low = imresize(image, (height // spec.scale, width // spec.scale))
    return _restore_dtype(_add_noise(low, spec, _full_scale(image), seed), image.dtype)


@DEGRADATIONS.register("gaussian")
def gaussian_degradation(image: np.ndarray, spec: DegradationSpec, seed: int = 0) -> np.ndarray:
    """Gaussian blur then decimation (every `scale`-th pixel, centred), the classic SR degradation model."""
    sigma = spec.blur_sigma if spec.blur_sigma > 0 else 0.5 * spec.scale
    blurred = cv2.GaussianBlur(image.astype(np.float64), (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT)
    offset = spec.scale // 2
    low = blurred[offset :: spec.scale, offset :: spec.scale]
    low = low[: image.shape[0] // spec.scale, : image.shape[1] // spec.scale]
    return _restore_dtype(_add_noise(low, spec, _full_scale(image), seed), image.dtype)


def _full_scale(image: np.ndarray) -> float:
    return float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0


def degrade(image: np.ndarray, spec: DegradationSpec, seed: int = 0) -> np.ndarray:
    """Apply the registered degradation named in `spec` to a 2-D image."""
    function: Callable[..., np.ndarray] = DEGRADATIONS.get(spec.name)
    return function(image, spec, seed)


def trim_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Drop bottom/right rows and columns so both sides divide by `multiple` (LR × scale = HR exactly)."""
    height, width = image.shape[:2]
    return image[: height - height % multiple, : width - width % multiple]

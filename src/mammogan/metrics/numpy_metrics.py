"""Numpy reference computations shared by validation, evaluation and tiles (independent of the model code)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from ..data.degradation import imresize


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: MATLAB-style bicubic interpolation of the LR image by `scale`."""
    return imresize(lr.astype(np.float64), (lr.shape[0] * scale, lr.shape[1] * scale)).astype(np.float32)


def psnr_np(reference: np.ndarray, test: np.ndarray, data_range: float) -> float:
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def ssim_np(reference: np.ndarray, test: np.ndarray, data_range: float) -> float:
    """SSIM with the Wang et al. Gaussian window (σ = 1.5), as tf.image.ssim computes it."""
    if min(reference.shape) < 7:
        return float("nan")
    return float(structural_similarity(reference.astype(np.float64), test.astype(np.float64), data_range=data_range,
                                       gaussian_weights=True, sigma=1.5, use_sample_covariance=False))


def moment_distance(real: np.ndarray, fake: np.ndarray, bins: int = 64) -> float:
    """A cheap, weight-free realism signal for tiles and early stopping: |Δmean| + |Δstd| + histogram L1/2."""
    real_hist = np.histogram(real, bins=bins, range=(0, 1))[0] / real.size
    fake_hist = np.histogram(fake, bins=bins, range=(0, 1))[0] / fake.size
    return float(abs(real.mean() - fake.mean()) + abs(real.std() - fake.std()) + 0.5 * np.abs(real_hist - fake_hist).sum())

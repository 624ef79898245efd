"""Distribution metrics for synthetic images: feature arrays (or class probabilities) in, numbers out.

FID, KID, precision/recall/density/coverage and the Inception-Score-style score compare sets of
features from one extractor (`mammogan.metrics.features`); their values mean nothing without the
extractor's name, so callers report it beside them. `mean_pairwise_ms_ssim` works on the images
themselves and measures within-set diversity. `frechet_radiomics_distance` hands the images to the
optional `frd-score` package (requirements-extra.txt), which extracts its own radiomics features.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Sequence

import numpy as np
import tensorflow as tf
from scipy.spatial.distance import cdist
from scipy.special import rel_entr

from ..data.images import write_png
from .full_reference import ms_ssim

FRD_INSTALL = "pip install -r requirements-extra.txt"


def _features(array: np.ndarray, what: str, minimum: int = 2) -> np.ndarray:
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < minimum:
        raise ValueError(f"{what}: expected an (N, D) feature array with N >= {minimum}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what}: features contain NaN or infinite values")
    return array


def _pair(real: np.ndarray, fake: np.ndarray, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    real, fake = _features(real, "real", minimum), _features(fake, "fake", minimum)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real and fake features differ in dimension: {real.shape[1]} vs {fake.shape[1]}")
    return real, fake


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (rounding negatives clipped to 0)."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||² + tr(S1 + S2 - 2 (S1 S2)^½) between two Gaussians.

    tr (S1 S2)^½ is computed as the sum of square roots of the eigenvalues of S1^½ S2 S1^½, which is
    similar to S1 S2 but symmetric: real eigenvalues, no complex `sqrtm` output and no eps offset
    for singular covariances (fewer samples than feature dimensions).
    """
    root = _psd_sqrt(sigma1)
    middle = root @ sigma2 @ root
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2.0), 0.0, None)).sum())
    diff = mu1 - mu2
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt)
    return max(distance, 0.0)  # rounding can leave -1e-12 for identical sets


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    real, fake = _pair(real, fake)
    return frechet_distance(real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False))


@dataclass(frozen=True)
class KID:
    """Kernel Inception Distance: unbiased MMD² averaged over random subsets."""

    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with the cubic polynomial kernel k(a, b) = (a·b / D + 1)³ (Bińkowski et al. 2018)."""
    m, n, dim = x.shape[0], y.shape[0], x.shape[1]
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> KID:
    """KID mean and standard deviation over `subsets` draws of `subset_size` samples from each set.

    The subset size is capped at the smaller set. Each estimate is unbiased, so the mean can be
    slightly negative when the two sets come from one distribution.
    """
    real, fake = _pair(real, fake)
    if subsets < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets}")
    size = min(subset_size, real.shape[0], fake.shape[0])
    rng = np.random.default_rng(seed)
    values = np.array(
        [
            polynomial_mmd2_unbiased(
                real[rng.choice(real.shape[0], size, replace=False)],
                fake[rng.choice(fake.shape[0], size, replace=False)],
            )
            for _ in range(subsets)
        ]
    )
    return KID(mean=float(values.mean()), std=float(values.std()), subsets=subsets, subset_size=size)


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density and coverage of fake samples against real ones (Naeem et al. 2020)."""

    precision: float
    recall: float
    density: float
    coverage: float
    k: int


def _kth_neighbour_radius(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each sample to its k-th nearest other sample (index 0 of the sort is itself)."""
    distances = cdist(features, features)
    return np.partition(distances, k, axis=1)[:, k]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> PRDC:
    """k-NN precision/recall (Kynkäänniemi et al. 2019) with density and coverage (Naeem et al. 2020).

    Follows the authors' reference code (clovaai/generative-evaluation-prdc): a sample lies in
    another's k-NN ball when its distance is strictly smaller than that ball's radius.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    real, fake = _pair(real, fake, minimum=k + 1)
    real_radius = _kth_neighbour_radius(real, k)
    fake_radius = _kth_neighbour_radius(fake, k)
    distances = cdist(real, fake)  # (real, fake)
    inside_real_balls = distances < real_radius[:, None]
    return PRDC(
        precision=float(inside_real_balls.any(axis=0).mean()),
        recall=float((distances < fake_radius[None, :]).any(axis=1).mean()),
        density=float(inside_real_balls.sum(axis=0).mean() / k),
        coverage=float((distances.min(axis=1) < real_radius).mean()),
        k=k,
    )


@dataclass(frozen=True)
class ClassifierScore:
    """Inception-Score-style exp(E KL(p(y|x) || p(y))), mean and std over splits."""

    mean: float
    std: float
    splits: int


def classifier_score(probabilities: np.ndarray, splits: int = 10) -> ClassifierScore:
    """Inception Score computed from any classifier's class probabilities, shape (N, classes).

    Ranges from 1 (every sample gets the same prediction) to the number of classes (confident
    predictions spread evenly over the classes). Splits are consecutive, as in the original code.
    """
    probabilities = _features(probabilities, "class probabilities", minimum=splits)
    if np.any(probabilities < 0) or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("class probabilities must be non-negative rows summing to 1 (apply softmax first)")
    scores = []
    for part in np.array_split(probabilities, splits):
        marginal = part.mean(axis=0, keepdims=True)
        scores.append(np.exp(rel_entr(part, marginal).sum(axis=1).mean()))
    return ClassifierScore(mean=float(np.mean(scores)), std=float(np.std(scores)), splits=splits)


def mean_pairwise_ms_ssim(
    images: np.ndarray,
    data_range: float = 1.0,
    power_factors: Sequence[float] | None = None,
    max_pairs: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
) -> float:
    """Within-set diversity: mean MS-SSIM over pairs of distinct samples (lower = more diverse).

    `images` is (N, H, W, 1) in [0, data_range]. All pairs are used up to `max_pairs`, else a
    seeded random choice of that many distinct pairs. Small images need fewer `power_factors`
    (see `full_reference.ms_ssim`).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 1 or images.shape[0] < 2:
        raise ValueError(f"expected at least 2 greyscale images of shape (N, H, W, 1), got {images.shape}")
    first, second = np.triu_indices(images.shape[0], k=1)
    if first.size > max_pairs:
        chosen = np.random.default_rng(seed).choice(first.size, max_pairs, replace=False)
        first, second = first[chosen], second[chosen]
    values = [
        ms_ssim(
            tf.constant(images[first[start : start + batch_size]]),
            tf.constant(images[second[start : start + batch_size]]),
            data_range,
            power_factors=power_factors,
        ).numpy()
        for start in range(0, first.size, batch_size)
    ]
    return float(np.concatenate(values).mean())


def frd_package() -> ModuleType | None:
    """The optional `frd_score` package when it and the pyradiomics it calls on first use import, else None."""
    try:
        import frd_score
        import radiomics  # noqa: F401  (frd_score imports it lazily; without it compute_frd fails mid-run)
    except ImportError:
        return None
    return frd_score


def frechet_radiomics_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet Radiomics Distance (Konz, Osuala et al. 2024) with `frd_score.compute_frd`'s defaults.

    The package reads two image folders, so the (N, H, W) images in [0, 1] are written as 8-bit PNGs
    to a temporary folder that is removed afterwards.
    """
    package = frd_package()
    if package is None:
        raise ImportError(f"the optional frd-score package (with pyradiomics) is not installed: {FRD_INSTALL}")
    with tempfile.TemporaryDirectory(prefix="mammogan_frd_") as root:
        folders = []
        for label, images in (("real", real), ("fake", fake)):
            folder = Path(root) / label
            for index, image in enumerate(np.asarray(images)):
                write_png(folder / f"{index:05d}.png", np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8))
            folders.append(str(folder))
        return float(package.compute_frd(folders))

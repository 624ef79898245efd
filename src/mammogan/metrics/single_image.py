"""Measures for samples of a single-image GAN against their one source image (SinGAN, Shaham et al. 2019)."""

from __future__ import annotations

import numpy as np

from .distribution import frechet_distance
from .features import FeatureExtractor


def sifid(extractor: FeatureExtractor, samples: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Single-image FID of each sample: the Fréchet distance between the statistics of the feature vectors at every
    position of an early feature map (`FeatureExtractor.patch_features`) of the sample and of the source.

    `samples` (N, H, W) and `source` (H, W) in [0, 1]; returns (N,). 0 for a copy of the source.
    """
    maps = extractor.patch_features(np.concatenate([source[None], samples])[..., None])

    def statistics(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return vectors.mean(axis=0), np.cov(vectors, rowvar=False)

    reference = statistics(maps[0])
    return np.array([frechet_distance(*statistics(vectors), *reference) for vectors in maps[1:]])


def pixel_diversity(samples: np.ndarray, source: np.ndarray) -> float:
    """SinGAN's diversity: the per-pixel standard deviation over the samples, averaged over pixels and divided by
    the source's intensity standard deviation (0: all samples equal; about 1: as varied as the image itself)."""
    return float(np.std(samples, axis=0).mean() / max(float(np.std(source)), 1e-8))

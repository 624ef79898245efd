"""Texture statistics of greyscale patches: cheap, offline, interpretable features that see what a lesion
classifier's features are blind to (fibrous texture, noise grain, grid artefacts).

Per image (values in [0, 1]):
- intensity: mean, standard deviation and the 5/25/50/75/95th percentiles;
- gradient (Sobel) magnitude: mean, standard deviation, median and 90th percentile;
- Laplacian: mean absolute value, standard deviation and kurtosis (edges and specks);
- radial power spectrum: the share of the (mean-removed, Hann-windowed) power in RADIAL_BANDS log-spaced
  frequency bands, as log10 — a checkerboard or grid pattern shows as excess power in the top bands;
- grey-level co-occurrence (Haralick) properties from scikit-image: contrast, dissimilarity, homogeneity,
  energy, correlation and ASM at distances 1, 2 and 4 px, averaged over 0°, 45°, 90°, 135°, on the
  image quantised to GLCM_LEVELS grey levels of its own range (so they describe pattern, not brightness).
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.feature import graycomatrix, graycoprops

from ..registry import FEATURE_EXTRACTORS
from .features import Embedding

RADIAL_BANDS = 8
GLCM_LEVELS = 32
GLCM_DISTANCES = (1, 2, 4)
GLCM_PROPERTIES = ("contrast", "dissimilarity", "homogeneity", "energy", "correlation", "ASM")
PERCENTILES = (5, 25, 50, 75, 95)


def radial_frequencies(side: int, bands: int = RADIAL_BANDS) -> np.ndarray:
    """Band edges in cycles per pixel, log-spaced from one cycle per image to Nyquist (0.5)."""
    return np.geomspace(1.0 / side, 0.5, bands + 1)


def _windowed_power(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The power spectrum of the mean-removed, Hann-windowed image and each coefficient's radial frequency (cycles/px)."""
    height, width = image.shape
    window = np.outer(np.hanning(height), np.hanning(width))
    power = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
    radius = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.fftfreq(width)[None, :] ** 2)
    return power, radius


def radial_power_spectrum(image: np.ndarray, bins: int) -> np.ndarray:
    """Mean power at `bins` linearly spaced radial frequencies from 0 to Nyquist (mean removed, Hann window)."""
    power, radius = _windowed_power(image)
    index = np.minimum(np.floor(radius / 0.5 * bins + 1e-6).astype(np.int64), bins)  # past Nyquist (the corners) is dropped
    sums = np.bincount(index.ravel(), power.ravel(), minlength=bins + 1)[:bins]
    counts = np.bincount(index.ravel(), minlength=bins + 1)[:bins]
    return sums / np.maximum(counts, 1)


def log_power_moments(spectra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, bins) radial power spectra → per-band mean and standard deviation of log10 power (the plot's band)."""
    logs = np.log10(np.maximum(np.asarray(spectra, np.float64), 1e-20))
    return logs.mean(axis=0), logs.std(axis=0)


def spectrum_gap(real_spectra: np.ndarray, other_spectra: np.ndarray) -> float:
    """How far the other set's mean log spectrum strays from the real one: the largest gap over bands in real standard
    deviations. At most 1 means it stays inside the real ± 1 sd band of power_spectrum.png; grid artifacts and
    missing fine texture show up as one band far outside."""
    real_mean, real_sd = log_power_moments(real_spectra)
    other_mean, _ = log_power_moments(other_spectra)
    return float(np.max(np.abs(other_mean - real_mean) / np.maximum(real_sd, 1e-12)))


def _band_shares(image: np.ndarray) -> np.ndarray:
    """log10 of the share of the image's power in each RADIAL_BANDS band (the top band takes the corners too)."""
    power, radius = _windowed_power(image)
    band = np.minimum(np.digitize(radius, radial_frequencies(min(image.shape))) - 1, RADIAL_BANDS - 1)
    inside = band >= 0  # below one cycle per image (the DC term) is left out
    shares = np.bincount(band[inside], power[inside], minlength=RADIAL_BANDS)
    return np.log10(shares / max(shares.sum(), 1e-20) + 1e-12)


def _glcm(image: np.ndarray) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    levels = np.zeros(image.shape, np.uint8) if high - low < 1e-8 else np.clip(
        ((image - low) / (high - low) * GLCM_LEVELS).astype(np.int64), 0, GLCM_LEVELS - 1).astype(np.uint8)
    matrix = graycomatrix(levels, distances=GLCM_DISTANCES, angles=(0, np.pi / 4, np.pi / 2, 3 * np.pi / 4),
                          levels=GLCM_LEVELS, symmetric=True, normed=True)
    return np.concatenate([graycoprops(matrix, prop).mean(axis=1) for prop in GLCM_PROPERTIES])


def texture_vector(image: np.ndarray) -> np.ndarray:
    """The feature vector of one 2-D image in [0, 1] (see the module docstring for its parts)."""
    image = image.astype(np.float32)
    intensity = [image.mean(), image.std(), *np.percentile(image, PERCENTILES)]
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = np.sqrt(gx**2 + gy**2)
    gradient = [magnitude.mean(), magnitude.std(), np.median(magnitude), np.percentile(magnitude, 90)]
    laplacian = cv2.Laplacian(image, cv2.CV_32F, ksize=3)
    centred = laplacian - laplacian.mean()
    variance = float(np.mean(centred**2))
    kurtosis = float(np.mean(centred**4) / variance**2) if variance > 1e-20 else 0.0
    edges = [np.abs(laplacian).mean(), laplacian.std(), kurtosis]
    return np.concatenate([intensity, gradient, edges, _band_shares(image), _glcm(image)]).astype(np.float64)


def texture_feature_names() -> list[str]:
    names = ["mean", "std", *(f"p{p}" for p in PERCENTILES), "grad_mean", "grad_std", "grad_median", "grad_p90",
             "laplacian_abs_mean", "laplacian_std", "laplacian_kurtosis"]
    names += [f"power_band{b}" for b in range(RADIAL_BANDS)]
    names += [f"glcm_{prop}_d{d}" for prop in GLCM_PROPERTIES for d in GLCM_DISTANCES]
    return names


class TextureExtractor:
    """The `texture` feature extractor: the same interface as `features.FeatureExtractor` (features, embed), no network."""

    name = "texture"
    standardise = True  # the statistics mix units: distances need them scaled by the reference set's spread
    has_classifier = False
    no_classifier_reason = "texture statistics have no classifier head"

    def features(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 1) or (N, H, W) float images in [0, 1] → (N, D) float64 texture statistics."""
        images = np.asarray(images)
        if images.ndim == 4:
            images = images[..., 0]
        if images.ndim != 3 or images.shape[0] == 0 or min(images.shape[1:]) < 8:
            raise ValueError(f"texture: expected (N, H, W[, 1]) greyscale images of at least 8 px, got shape {images.shape}")
        return np.stack([texture_vector(image) for image in images])

    def embed(self, images: np.ndarray) -> Embedding:
        return Embedding(self.features(images), None)

    def patch_features(self, images: np.ndarray) -> list[np.ndarray]:
        raise ValueError("texture: statistics are per image; SIFID needs a network extractor (random_cnn, inception)")


@FEATURE_EXTRACTORS.register("texture")
def build_texture(path=None, *, seed: int = 0, batch_size: int = 32) -> TextureExtractor:
    """Texture statistics (no weights, no randomness: `path` and `seed` are not used)."""
    return TextureExtractor()

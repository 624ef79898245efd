"""Texture statistics and the classifier two-sample test: known spectra, known separability."""

from __future__ import annotations

import cv2
import keras
import numpy as np
import pytest

from mammogan.metrics.texture import (RADIAL_BANDS, TextureExtractor, radial_frequencies, radial_power_spectrum, spectrum_gap,
                                      texture_feature_names)
from mammogan.models.gan_generators import build_dcgan_generator
from mammogan.metrics.two_sample import classifier_two_sample_test, fit_logistic

SIDE = 64


def _bands(image: np.ndarray) -> np.ndarray:
    names = texture_feature_names()
    start = names.index("power_band0")
    return TextureExtractor().features(image[None])[0, start : start + RADIAL_BANDS]


def test_a_sinusoid_puts_its_power_in_the_band_of_its_frequency():
    edges = radial_frequencies(SIDE)
    y, x = np.mgrid[:SIDE, :SIDE]
    for band in range(2, RADIAL_BANDS):
        frequency = np.sqrt(edges[band] * edges[band + 1])  # the band's geometric centre, cycles per pixel
        image = 0.5 + 0.3 * np.sin(2 * np.pi * frequency * x)
        shares = 10 ** _bands(image)
        assert int(np.argmax(shares)) == band
        assert shares[band] > 0.6


def test_white_noise_is_flat_and_smoothing_moves_power_down():
    rng = np.random.default_rng(0)
    noise = rng.random((SIDE, SIDE))
    spectrum = radial_power_spectrum(noise, 16)
    assert spectrum[2:].std() / spectrum[2:].mean() < 0.35  # flat, up to the window's low-frequency leakage
    smooth = cv2.GaussianBlur(noise.astype(np.float32), (0, 0), 2.0)
    top = 10 ** _bands(noise)[-1], 10 ** _bands(smooth)[-1]
    assert top[1] < 0.05 * top[0]
    names = texture_feature_names()
    features = TextureExtractor().features(np.stack([noise, smooth]).astype(np.float32))
    assert features.shape == (2, len(names))
    grad = names.index("grad_mean")
    assert features[1, grad] < 0.3 * features[0, grad]


def test_checkerboard_shows_at_the_top_band():
    rng = np.random.default_rng(1)
    tissue = cv2.GaussianBlur(rng.random((SIDE, SIDE)).astype(np.float32), (0, 0), 3.0)
    board = tissue + 0.02 * ((np.indices((SIDE, SIDE)).sum(axis=0) % 2) - 0.5)
    assert 10 ** _bands(board)[-1] > 20 * 10 ** _bands(tissue)[-1]


def test_c2st_is_chance_for_one_distribution_and_one_for_different_ones():
    rng = np.random.default_rng(2)
    same = classifier_two_sample_test(rng.normal(size=(200, 10)), rng.normal(size=(200, 10)), seed=0)
    assert 0.40 < same.accuracy < 0.60 and same.ci_low < 0.5 < same.ci_high
    shifted = classifier_two_sample_test(rng.normal(size=(200, 10)), rng.normal(size=(200, 10)) + 3.0, seed=0)
    assert shifted.accuracy > 0.97
    rng_near_one = np.random.default_rng(4)  # folds of 0.875–1.0: the plain t-interval would pass 1.0
    near_one = classifier_two_sample_test(rng_near_one.normal(size=(40, 10)), rng_near_one.normal(size=(40, 10)) + 1.45)
    assert near_one.accuracy < 1.0 and near_one.ci_high == 1.0 and near_one.ci_low < near_one.accuracy
    partly = classifier_two_sample_test(rng.normal(size=(400, 10)), rng.normal(size=(400, 10)) + np.eye(10)[0] * 0.5, seed=0)
    assert 0.55 < partly.accuracy < 0.75  # one feature shifted by half a sd: Φ(0.25) ≈ 0.60 is the best possible
    assert len(same.folds) == 5
    with pytest.raises(ValueError, match="at least 5"):
        classifier_two_sample_test(np.zeros((3, 2)), np.ones((3, 2)))


def test_logistic_regression_recovers_a_separating_direction():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 3))
    y = (x[:, 0] - 2 * x[:, 2] > 0).astype(float)
    weights = fit_logistic(x, y, l2=1e-3)
    direction = weights[:3] / np.linalg.norm(weights[:3])
    assert np.dot(direction, np.array([1, 0, -2]) / np.sqrt(5)) > 0.98


def _generated(upsampling: str) -> tuple[keras.Model, np.ndarray]:
    keras.utils.set_random_seed(5)
    model = build_dcgan_generator(image_size=64, latent_dim=16, filters=16, upsampling=upsampling)
    latents = np.random.default_rng(0).normal(size=(16, 16)).astype(np.float32)
    return model, latents


def test_icnr_subpixel_upsampling_has_no_checkerboard_at_init():
    """Every ICNR sub-pixel step starts as nearest-neighbour upsampling (its 2×2 phases are equal), and the untrained
    generator's images keep less of their power in the top frequency band than with transposed convolutions."""
    model, latents = _generated("subpixel")
    shuffles = [layer.output for layer in model.layers if layer.name.endswith("_shuffle")]
    assert len(shuffles) == 4
    for output in keras.Model(model.inputs[0], shuffles)(latents):
        output = np.asarray(output)
        for dy, dx in ((0, 1), (1, 0), (1, 1)):
            np.testing.assert_allclose(output[:, dy::2, dx::2], output[:, 0::2, 0::2], atol=1e-6)
    top = {}
    for upsampling in ("subpixel", "transposed"):
        generator, latents = _generated(upsampling)
        images = (np.asarray(generator(latents)) + 1.0) / 2.0
        top[upsampling] = np.mean([10 ** _bands(image[..., 0])[-1] for image in images])
    assert top["subpixel"] < 0.5 * top["transposed"]


def test_spectrum_gap_is_zero_within_one_set_and_finds_a_missing_fine_band():
    rng = np.random.default_rng(4)
    noise = rng.random((96, SIDE, SIDE))
    spectra = np.stack([radial_power_spectrum(image, 16) for image in noise])
    assert spectrum_gap(spectra, spectra) == 0.0
    scaled = np.stack([radial_power_spectrum(image * 2.0, 16) for image in noise])  # power × 4 in every band
    sd = np.log10(spectra).std(axis=0)
    assert spectrum_gap(spectra, scaled) == pytest.approx(np.max(np.log10(4.0) / sd), rel=1e-6)
    other = np.stack([radial_power_spectrum(image, 16) for image in rng.random((96, SIDE, SIDE))])
    assert spectrum_gap(spectra, other) < 1.0  # another draw of white noise stays inside the ± 1 sd band
    smooth = np.stack([radial_power_spectrum(cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.5), 16) for image in noise])
    assert spectrum_gap(spectra, smooth) > 10.0  # blurred: the top bands lose orders of magnitude

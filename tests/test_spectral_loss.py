"""The generator's spectral term: the radial spectrum against known images, and what minimising it does."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mammogan.config.loader import validate
from mammogan.errors import ConfigError
from mammogan.losses import spectral_loss_per_example
from mammogan.losses.spectral import log_radial_spectrum
from mammogan.metrics.texture import radial_power_spectrum

SIDE = 32


def grating(cycles: int, phase: float = 0.0) -> np.ndarray:
    """A vertical cosine grating with `cycles` periods across the image, in [-1, 1]."""
    xs = np.arange(SIDE) / SIDE
    return np.tile(np.cos(2 * np.pi * cycles * xs + phase), (SIDE, 1)).astype(np.float32)


def batch(*images: np.ndarray) -> tf.Tensor:
    return tf.constant(np.stack(images)[..., None])


def test_a_grating_puts_its_power_in_its_own_band_as_the_numpy_spectrum_does():
    spectra = log_radial_spectrum(batch(grating(4), grating(10))).numpy()
    # bins are [b, b + 1) · 0.5 / 16 cycles/px for b = 1 … 15: 4 cycles per 32 px (0.125 cycles/px) is bin 4, column 3
    assert spectra.shape == (2, SIDE // 2 - 1)
    assert int(np.argmax(spectra[0])) == 3 and int(np.argmax(spectra[1])) == 9
    reference = np.log10(radial_power_spectrum((grating(10) + 1) / 2, SIDE // 2)[1:] * 4 + 1e-8)  # [0, 1] scale: power / 4
    assert np.allclose(spectra[1], reference, atol=1e-3)


def test_on_axis_frequencies_of_sizes_that_are_not_powers_of_two_stay_in_their_band():
    side = 48  # 6 cycles per 48 px = 0.125 cycles/px: bin 6 of 24, where floating point used to put it in bin 5
    xs = np.arange(side) / side
    image = np.tile(np.cos(2 * np.pi * 6 * xs), (side, 1)).astype(np.float32)
    spectra = log_radial_spectrum(tf.constant(image[None, ..., None])).numpy()[0]
    assert int(np.argmax(spectra)) == 5 and int(np.argmax(radial_power_spectrum((image + 1) / 2, side // 2))) == 6


def test_the_term_is_zero_for_one_batch_and_grows_with_a_spectral_mismatch():
    rng = np.random.default_rng(0)
    real = batch(*(rng.normal(0, 0.3, (SIDE, SIDE)).astype(np.float32) for _ in range(6)))
    same = spectral_loss_per_example(real, real).numpy()
    assert same.shape == (6,) and np.allclose(same, same[0]) and same[0] < 1e-6
    flipped = spectral_loss_per_example(real, tf.reverse(real, axis=[1])).numpy()[0]  # flips keep the spectrum
    smooth = spectral_loss_per_example(real, batch(*(grating(1, phase) for phase in np.linspace(0, 3, 6)))).numpy()[0]
    assert flipped < 1e-6 and smooth > 1.0


def test_descending_the_term_gives_smooth_images_the_real_batch_grain():
    """White-noise 'real' patches, blurred 'fake' ones: gradient steps on the fakes restore their high frequencies."""
    rng = np.random.default_rng(1)
    real = batch(*(rng.normal(0, 0.2, (SIDE, SIDE)).astype(np.float32) for _ in range(8)))
    kernel = tf.ones([5, 5, 1, 1]) / 25.0
    fake = tf.Variable(tf.nn.conv2d(batch(*(rng.normal(0, 0.6, (SIDE, SIDE)).astype(np.float32) for _ in range(8))),
                                    kernel, 1, "SAME"))
    top_band = slice(SIDE // 4, None)
    before = float(tf.reduce_mean(log_radial_spectrum(fake)[:, top_band] - log_radial_spectrum(real)[:, top_band]))
    start = float(spectral_loss_per_example(real, fake)[0])
    optimizer = tf.keras.optimizers.Adam(0.01)
    for _ in range(150):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(spectral_loss_per_example(real, fake))
        optimizer.apply_gradients([(tape.gradient(value, fake), fake)])
    after = float(tf.reduce_mean(log_radial_spectrum(fake)[:, top_band] - log_radial_spectrum(real)[:, top_band]))
    assert before < -1.0 and abs(after) < 0.25 and float(spectral_loss_per_example(real, fake)[0]) < 0.05 * start


def test_only_the_unconditional_family_reads_spectral_weight(tmp_path):
    base = {"model": {"task": "conditional", "generator": "conditional_dcgan", "discriminator": "conditional_dcgan",
                      "image_size": 32, "latent_dim": 8, "classes": ["normal", "mass"]},
            "dataset": {"train_dir": str(tmp_path)}, "train": {"output_dir": str(tmp_path / "out"), "spectral_weight": 1.0}}
    with pytest.raises(ConfigError, match=r"\[train\] spectral_weight.*dcgan"):
        validate(base, tmp_path / "train_eval_infer.config")
    base["model"].update(task="dcgan", generator="dcgan", discriminator="dcgan")
    del base["model"]["classes"]
    assert validate(base, tmp_path / "train_eval_infer.config").train.spectral_weight == 1.0

"""A spectral term for generators: generated patches should have the real patches' radial power spectrum.

GAN generators on small data make smooth blobs: too much power at the lowest frequencies, too little in
the middle bands where fibrous tissue lives (docs/results.md, Synthetic images), and up-convolutions add
peaks near Nyquist. The discriminator notices slowly; this term tells the generator directly, after
Durall et al., "Watch your up-convolution: CNN based generative deep neural networks are failing to
reproduce spectral distributions" (CVPR 2020), which regularises the azimuthally averaged spectrum.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _radial_bins(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A (H·W, bins − 1) averaging matrix over linear radial-frequency bins, and the Hann window.

    Bin b (b = 1 … bins − 1, bins = min(H, W) // 2) holds the coefficients with radius in [b, b + 1) · 0.5 / bins
    cycles per pixel; the DC bin and the corners past Nyquist are left out (the mean is removed, and the corners
    exist only along diagonals). The 1e-6 keeps on-axis coefficients of sizes that are not powers of two in
    their own bin, where floating point puts them a hair below its edge.
    """
    bins = min(height, width) // 2
    radius = np.sqrt(np.fft.fftfreq(height)[:, None] ** 2 + np.fft.fftfreq(width)[None, :] ** 2)
    index = np.floor(radius / 0.5 * bins + 1e-6).astype(np.int64).ravel()
    keep = np.flatnonzero((index >= 1) & (index < bins))
    matrix = np.zeros((height * width, bins - 1), np.float32)
    matrix[keep, index[keep] - 1] = 1.0
    matrix /= np.maximum(matrix.sum(axis=0, keepdims=True), 1.0)
    window = np.outer(np.hanning(height), np.hanning(width)).astype(np.float32)
    return matrix, window


def log_radial_spectrum(images: tf.Tensor) -> tf.Tensor:
    """(N, H, W, C) images → (N, bins − 1) log10 mean power per radial frequency band of the channel mean.

    The per-image mean is removed and a Hann window applied first, so the film background's level and the
    patch border do not dominate; the result compares across images of different brightness.
    """
    height, width = int(images.shape[1]), int(images.shape[2])
    matrix, window = _radial_bins(height, width)
    grey = tf.reduce_mean(tf.cast(images, tf.float32), axis=-1)
    grey = (grey - tf.reduce_mean(grey, axis=[1, 2], keepdims=True)) * window
    spectrum = tf.signal.fft2d(tf.complex(grey, tf.zeros_like(grey)))
    power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
    banded = tf.matmul(tf.reshape(power, [-1, height * width]), matrix)
    return tf.math.log(banded + 1e-8) / tf.math.log(10.0)


def spectral_loss_per_example(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of the batches' mean log spectra (and their spreads), repeated per fake example.

    Matching each sample to the real mean would squeeze every sample's spectrum to one; matching the batch
    mean and standard deviation per band leaves room for fatty and dense patches. Returned per example so a
    distribution strategy's global-batch average gives the mean over replicas; the moments are each replica's
    own, so with one example per replica only the mean is matched (the spreads are both 0).
    """
    real_spectra, fake_spectra = log_radial_spectrum(real), log_radial_spectrum(fake)
    real_mean, real_var = tf.nn.moments(tf.stop_gradient(real_spectra), axes=[0])
    fake_mean, fake_var = tf.nn.moments(fake_spectra, axes=[0])
    gap = tf.reduce_mean(tf.square(fake_mean - real_mean)) + tf.reduce_mean(
        tf.square(tf.sqrt(fake_var + 1e-8) - tf.sqrt(real_var + 1e-8)))
    return tf.fill([tf.shape(fake)[0]], gap)

"""Full-reference image-quality metrics for greyscale batches, registered in `METRICS` by name.

Every metric has the interface the evaluators rely on::

    fn(reference, distorted, data_range) -> tf.Tensor of shape (batch,)

with float32 tensors of shape (B, H, W, 1) holding values in [0, data_range] (255 for 8-bit,
65535 for 16-bit data). Each metric rescales internally to the range its definition assumes, so
the same image pair gives the same score at any bit depth. They run eagerly: the value-range
check reads the tensors.

PSNR, SSIM and MS-SSIM use `tf.image`. GMSD, MS-GMSD, MDSI and HaarPSI have no TensorFlow
implementation; they follow the greyscale code paths of the piq library (v0.8.0), including its
padding and pre-averaging, so values can be checked against piq (tests/fixtures/metrics/).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from ..registry import METRICS

# Whether a larger value means a closer match, per registered metric name.
higher_is_better: dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "ms_ssim": True,
    "gmsd": False,
    "ms_gmsd": False,
    "mdsi": False,
    "haarpsi": True,
}

SSIM_FILTER_SIZE = 11
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003; tf.image's default
MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)  # Zhang et al. 2017
_PREWITT_X = np.array([[-1.0, 0.0, 1.0]] * 3) / 3.0
# Rows of MDSI's RGB -> LHM matrix summed: a grey image replicated to RGB (as piq does) has
# L, H, M channels that are these multiples of the grey value.
_LHM_OF_GREY = (0.2989 + 0.587 + 0.114, 0.3 + 0.04 - 0.35, 0.34 - 0.6 + 0.17)


def _checked(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Cast to float32 and check shapes and value range, so a wrong `data_range` fails loudly."""
    reference = tf.cast(tf.convert_to_tensor(reference), tf.float32)
    distorted = tf.cast(tf.convert_to_tensor(distorted), tf.float32)
    if reference.shape.rank != 4 or reference.shape[-1] != 1:
        raise ValueError(f"expected greyscale batches of shape (B, H, W, 1), got {reference.shape}")
    if reference.shape != distorted.shape:
        raise ValueError(f"reference {reference.shape} and distorted {distorted.shape} differ in shape")
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    for name, tensor in (("reference", reference), ("distorted", distorted)):
        low, high = float(tf.reduce_min(tensor)), float(tf.reduce_max(tensor))
        if low < 0 or high > data_range:
            raise ValueError(f"{name} values span [{low}, {high}], outside [0, data_range={data_range}]")
    return reference, distorted


def _need_size(images: tf.Tensor, minimum: int, metric: str, hint: str = "") -> None:
    height, width = images.shape[1], images.shape[2]
    if height < minimum or width < minimum:
        raise ValueError(f"{metric} needs images of at least {minimum}x{minimum} pixels, got {height}x{width}.{hint}")


@METRICS.register("psnr")
def psnr(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tf.Tensor:
    """Peak signal-to-noise ratio in dB (inf for identical images)."""
    reference, distorted = _checked(reference, distorted, data_range)
    return tf.image.psnr(reference, distorted, max_val=data_range)


@METRICS.register("ssim")
def ssim(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tf.Tensor:
    """Structural similarity (11x11 Gaussian window, sigma 1.5, no pre-downsampling).

    tf.image works in float32: at 16 bits expect about 1e-4 relative rounding error (also MS-SSIM).
    """
    reference, distorted = _checked(reference, distorted, data_range)
    _need_size(reference, SSIM_FILTER_SIZE, "SSIM")
    return tf.image.ssim(reference, distorted, max_val=data_range, filter_size=SSIM_FILTER_SIZE)


def ms_ssim_min_size(scales: int) -> int:
    """Smallest side length for which every scale is still at least one SSIM window wide."""
    return (SSIM_FILTER_SIZE - 1) * 2 ** (scales - 1) + 1


def ms_ssim_scales_that_fit(side: int, most: int = len(MS_SSIM_WEIGHTS)) -> int:
    """The most MS-SSIM scales (up to `most`) an image with this shorter side allows; 0 below one SSIM window."""
    return next((k for k in range(most, 0, -1) if ms_ssim_min_size(k) <= side), 0)


@METRICS.register("ms_ssim")
def ms_ssim(
    reference: tf.Tensor, distorted: tf.Tensor, data_range: float, *, power_factors: Sequence[float] | None = None
) -> tf.Tensor:
    """Multi-scale SSIM.

    The default 5 scales need images of at least 161x161 pixels; smaller images raise a
    ValueError that names the size. For them pass fewer `power_factors` (e.g.
    `MS_SSIM_WEIGHTS[:3]` needs 41x41): custom factors are normalised to sum to 1, as piq does, so
    the score stays a weighted geometric mean.
    """
    reference, distorted = _checked(reference, distorted, data_range)
    if power_factors is None:
        factors = MS_SSIM_WEIGHTS
    else:
        total = float(sum(power_factors))
        if not power_factors or total <= 0:
            raise ValueError(f"power_factors must be non-empty with a positive sum, got {power_factors}")
        factors = tuple(float(f) / total for f in power_factors)
    scales = len(factors)
    side = min(reference.shape[1], reference.shape[2])
    fitting = ms_ssim_scales_that_fit(side, scales - 1)
    advice = f" Pass at most {fitting} power_factors, e.g. MS_SSIM_WEIGHTS[:{fitting}]." if fitting else ""
    _need_size(reference, ms_ssim_min_size(scales), f"MS-SSIM with {scales} scales", advice)
    return tf.image.ssim_multiscale(
        reference, distorted, max_val=data_range, power_factors=factors, filter_size=SSIM_FILTER_SIZE
    )


def _halve(images: tf.Tensor) -> tf.Tensor:
    """2x2 average pooling; odd sizes are zero-padded at the bottom/right first (piq's convention)."""
    pad = max(images.shape[1] % 2, images.shape[2] % 2)
    images = tf.pad(images, [[0, 0], [0, pad], [0, pad], [0, 0]])
    return tf.nn.avg_pool2d(images, ksize=2, strides=2, padding="VALID")


def _gradient_magnitude(images: tf.Tensor) -> tf.Tensor:
    """Prewitt gradient magnitude with zero padding, shape (B, H, W, 1)."""
    kernels = np.stack([_PREWITT_X, _PREWITT_X.T], axis=-1)[:, :, None, :]
    gradients = tf.nn.conv2d(images, tf.constant(kernels, tf.float32), strides=1, padding="SAME")
    return tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=-1, keepdims=True))


def _similarity(a: tf.Tensor, b: tf.Tensor, constant: float, alpha: float = 0.0) -> tf.Tensor:
    """The Dice-like similarity map shared by GMSD, MDSI and HaarPSI."""
    return (2.0 * a * b - alpha * a * b + constant) / (tf.square(a) + tf.square(b) - alpha * a * b + constant)


def _gmsd_single_scale(reference: tf.Tensor, distorted: tf.Tensor, constant: float, alpha: float) -> tf.Tensor:
    """Standard deviation of the gradient-magnitude similarity map, per image."""
    gms = _similarity(_gradient_magnitude(reference), _gradient_magnitude(distorted), constant, alpha)
    mean = tf.reduce_mean(gms, axis=[1, 2, 3], keepdims=True)
    return tf.sqrt(tf.reduce_mean(tf.square(gms - mean), axis=[1, 2, 3]))


@METRICS.register("gmsd")
def gmsd(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tf.Tensor:
    """Gradient magnitude similarity deviation (Xue et al. 2013); 0 for identical images."""
    reference, distorted = _checked(reference, distorted, data_range)
    reference, distorted = _halve(reference / data_range), _halve(distorted / data_range)
    return _gmsd_single_scale(reference, distorted, constant=170.0 / 255.0**2, alpha=0.0)


@METRICS.register("ms_gmsd")
def ms_gmsd(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tf.Tensor:
    """Multi-scale GMSD (Zhang et al. 2017), greyscale variant, 4 scales; 0 for identical images."""
    reference, distorted = _checked(reference, distorted, data_range)
    _need_size(reference, 2 ** len(MS_GMSD_WEIGHTS) + 1, "MS-GMSD")
    reference, distorted = reference / data_range * 255.0, distorted / data_range * 255.0
    squared = []
    for scale in range(len(MS_GMSD_WEIGHTS)):
        if scale > 0:
            reference, distorted = _halve(reference), _halve(distorted)
        squared.append(tf.square(_gmsd_single_scale(reference, distorted, constant=170.0, alpha=0.5)))
    return tf.sqrt(tf.add_n([weight * value for weight, value in zip(MS_GMSD_WEIGHTS, squared)]))


def _mdsi_average(images: tf.Tensor) -> tf.Tensor:
    """MDSI's pre-averaging by round(min side / 256), which simulates viewing distance."""
    size = max(1, round(min(images.shape[1], images.shape[2]) / 256))
    if size == 1:
        return images
    before, after = (size - 1) // 2, size // 2
    images = tf.pad(images, [[0, 0], [before, after], [before, after], [0, 0]])
    return tf.nn.avg_pool2d(images, ksize=size, strides=size, padding="VALID")


def _complex_power(values: tf.Tensor, exponent: float) -> tuple[tf.Tensor, tf.Tensor]:
    """Real and imaginary parts of values**exponent for real values of either sign."""
    modulus = tf.abs(values) ** exponent
    angle = tf.atan2(tf.zeros_like(values), values) * exponent
    return modulus * tf.cos(angle), modulus * tf.sin(angle)


@METRICS.register("mdsi")
def mdsi(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tf.Tensor:
    """Mean deviation similarity index (Nafchi et al. 2016), 'sum' combination; 0 for identical images."""
    reference, distorted = _checked(reference, distorted, data_range)
    c1, c2, c3, alpha, q, o = 140.0, 55.0, 550.0, 0.6, 0.25, 0.25
    reference = _mdsi_average(reference / data_range * 255.0)
    distorted = _mdsi_average(distorted / data_range * 255.0)
    light_ref, light_dist = _LHM_OF_GREY[0] * reference, _LHM_OF_GREY[0] * distorted
    grad_ref, grad_dist = _gradient_magnitude(light_ref), _gradient_magnitude(light_dist)
    grad_mean = _gradient_magnitude((light_ref + light_dist) / 2.0)
    # Not symmetric: the distorted image's similarity to the fused image counts positively (as in
    # the authors' MATLAB code and piq).
    gradient_similarity = (
        _similarity(grad_ref, grad_dist, c1)
        + _similarity(grad_dist, grad_mean, c2)
        - _similarity(grad_ref, grad_mean, c2)
    )
    chroma_weight = _LHM_OF_GREY[1] ** 2 + _LHM_OF_GREY[2] ** 2
    chroma_similarity = (2.0 * chroma_weight * reference * distorted + c3) / (
        chroma_weight * (tf.square(reference) + tf.square(distorted)) + c3
    )
    combined = alpha * gradient_similarity + (1.0 - alpha) * chroma_similarity
    real, imag = _complex_power(combined, q)
    real_mean = tf.reduce_mean(real, axis=[1, 2], keepdims=True)
    imag_mean = tf.reduce_mean(imag, axis=[1, 2], keepdims=True)
    deviation = tf.sqrt(tf.square(real - real_mean) + tf.square(imag - imag_mean))
    return tf.reduce_mean(deviation, axis=[1, 2, 3]) ** o


def _haar_coefficients(images: tf.Tensor, scales: int) -> tf.Tensor:
    """Haar wavelet responses, channels (horizontal, vertical) per scale; 'same' size as MATLAB conv2."""
    responses = []
    for scale in range(scales):
        size = 2 ** (scale + 1)
        haar = np.ones((size, size)) / size
        haar[size // 2 :, :] *= -1.0
        kernels = np.stack([haar, haar.T], axis=-1)[:, :, None, :]
        before, after = size // 2 - 1, size // 2
        padded = tf.pad(images, [[0, 0], [before, after], [before, after], [0, 0]])
        responses.append(tf.nn.conv2d(padded, tf.constant(kernels, tf.float32), strides=1, padding="VALID"))
    return tf.concat(responses, axis=-1)


@METRICS.register("haarpsi")
def haarpsi(reference: tf.Tensor, distorted: tf.Tensor, data_range: float) -> tf.Tensor:
    """Haar wavelet-based perceptual similarity (Reisenhofer et al. 2018), 3 scales; 1 for identical images."""
    reference, distorted = _checked(reference, distorted, data_range)
    scales, c, alpha = 3, 30.0, 4.2
    _need_size(reference, 2 ** (scales + 1), "HaarPSI")
    reference = _halve(reference / data_range * 255.0)
    distorted = _halve(distorted / data_range * 255.0)
    coeff_ref = tf.abs(_haar_coefficients(reference, scales))
    coeff_dist = tf.abs(_haar_coefficients(distorted, scales))
    # The coarsest scale weights the similarity of the two finer ones, per orientation.
    weights = tf.maximum(coeff_ref[..., 4:6], coeff_dist[..., 4:6])
    similarity = tf.stack(
        [
            (
                _similarity(coeff_ref[..., orientation], coeff_dist[..., orientation], c)
                + _similarity(coeff_ref[..., orientation + 2], coeff_dist[..., orientation + 2], c)
            )
            / 2.0
            for orientation in range(2)
        ],
        axis=-1,
    )
    eps = float(np.finfo(np.float32).eps)
    score = (tf.reduce_sum(tf.sigmoid(alpha * similarity) * weights, axis=[1, 2, 3]) + eps) / (
        tf.reduce_sum(weights, axis=[1, 2, 3]) + eps
    )
    return tf.square(tf.math.log(score / (1.0 - score)) / alpha)

"""Small custom layers shared by several architectures (registered for `.keras` saving)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

# The last conv of residual SR generators starts at zero, so an untrained generator outputs exactly
# the interpolated input (the bicubic baseline) and training only ever adds detail to it.
TAIL_INITIALIZER = "zeros"


@keras.saving.register_keras_serializable(package="mammogan")
class DepthToSpace(keras.layers.Layer):
    """Sub-pixel upsampling (pixel shuffle) by `block` along both axes."""

    def __init__(self, block: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.block = block

    def call(self, inputs):
        return tf.nn.depth_to_space(inputs, self.block)

    def get_config(self) -> dict:
        return {**super().get_config(), "block": self.block}


def _kernel_1d(scale: int, method: str) -> np.ndarray:
    """(scale, 5) weights: output phase p of an integer upscale reads input offsets -2..2 (half-pixel centres).

    Bicubic uses Keys' kernel with a = -0.5 and bilinear the triangle, exactly as MATLAB's imresize
    does when enlarging, so an untrained residual generator reproduces the evaluation's bicubic baseline.
    """
    weights = np.zeros((scale, 5))
    for phase in range(scale):
        position = (phase + 0.5) / scale - 0.5  # input coordinate relative to the source pixel
        for tap, offset in enumerate(range(-2, 3)):
            distance = abs(position - offset)
            if method == "bilinear":
                weights[phase, tap] = max(0.0, 1.0 - distance)
            elif distance <= 1:
                weights[phase, tap] = 1.5 * distance**3 - 2.5 * distance**2 + 1
            elif distance < 2:
                weights[phase, tap] = -0.5 * distance**3 + 2.5 * distance**2 - 4 * distance + 2
        weights[phase] /= weights[phase].sum()
    return weights


@keras.saving.register_keras_serializable(package="mammogan")
class Upsample(keras.layers.Layer):
    """Fixed bicubic/bilinear upsampling by an integer factor, as a convolution + depth-to-space.

    Works for any input size and compiles with XLA (tf.image.resize's bicubic kernel does not).
    Borders are mirrored like MATLAB's imresize.
    """

    def __init__(self, scale: int, method: str = "bicubic", **kwargs) -> None:
        super().__init__(**kwargs)
        if method not in ("bicubic", "bilinear"):
            raise ValueError(f"method must be 'bicubic' or 'bilinear', got {method!r}")
        self.scale = scale
        self.method = method
        weights = _kernel_1d(scale, method)
        kernel = np.einsum("yi,xj->ijyx", weights, weights).reshape(5, 5, 1, scale * scale)
        self._kernel = tf.constant(kernel, tf.float32)

    def call(self, inputs):
        padded = tf.pad(tf.cast(inputs, tf.float32), [[0, 0], [2, 2], [2, 2], [0, 0]], mode="SYMMETRIC")
        phases = tf.nn.conv2d(padded, self._kernel, strides=1, padding="VALID")
        return tf.cast(tf.nn.depth_to_space(phases, self.scale), inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "method": self.method}


@keras.saving.register_keras_serializable(package="mammogan")
class ReflectionPad2D(keras.layers.Layer):
    """Mirror-pad both spatial axes by `pad` (no edge row repeated), so borders look like the image, not black frames."""

    def __init__(self, pad: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pad = pad

    def call(self, inputs):
        return tf.pad(inputs, [[0, 0], [self.pad, self.pad], [self.pad, self.pad], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        grow = lambda side: None if side is None else side + 2 * self.pad  # noqa: E731
        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self) -> dict:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="mammogan")
class ICNR(keras.initializers.Initializer):
    """ICNR (Aitken et al. 2017): a sub-pixel conv kernel whose `scale`² output phases start as copies of one base
    kernel, so conv + depth-to-space starts as nearest-neighbour upsampling of a plain conv: no checkerboard at init."""

    def __init__(self, scale: int = 2, seed: int | None = None) -> None:
        self.scale = scale
        self.seed = seed

    def __call__(self, shape, dtype=None):
        *kernel, channels_in, channels_out = shape
        phases = self.scale * self.scale
        if channels_out % phases:
            raise ValueError(f"ICNR: {channels_out} output channels do not split into {phases} sub-pixel phases")
        base = keras.initializers.GlorotUniform(self.seed)((*kernel, channels_in, channels_out // phases), dtype=dtype)
        return keras.ops.tile(base, (1,) * (len(kernel) + 1) + (phases,))  # channel (phase·C + c) = base channel c

    def get_config(self) -> dict:
        return {"scale": self.scale, "seed": self.seed}


# Gain on the Laplacian channel: on real 64² mini-MIAS patches in [-1, 1] the Laplacian's spread is about a fifth
# of the image's (0.06 vs 0.31), and spectrally normalised first convs cannot amplify it; ×4 brings it level.
LAPLACIAN_GAIN = 4.0


@keras.saving.register_keras_serializable(package="mammogan")
class LaplacianChannel(keras.layers.Layer):
    """Append the image's 4-neighbour Laplacian (×LAPLACIAN_GAIN, mirrored borders) as a second channel.

    A discriminator that sees fine structure at the image's own amplitude: the grain, strands and edges a
    texture classifier separates samples by are small next to the low-frequency content of a patch.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        kernel = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32) * LAPLACIAN_GAIN
        self._kernel = tf.constant(kernel[:, :, None, None])

    def call(self, inputs):
        image = tf.cast(inputs, tf.float32)
        padded = tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
        laplacian = tf.nn.conv2d(padded, self._kernel, strides=1, padding="VALID")
        return tf.cast(tf.concat([image, laplacian], axis=-1), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 2)


@keras.saving.register_keras_serializable(package="mammogan")
class MinibatchStd(keras.layers.Layer):
    """Append the batch's mean feature standard deviation as a constant channel (Karras et al. 2018, ProGAN).

    The discriminator then sees how varied a batch is, and a generator whose samples are all alike — the
    uniform texture of a mode-averaging generator — is told apart from real batches that range from flat
    fatty tissue to dense strands. Statistics are over the (per-replica) batch it is called on.
    """

    def call(self, inputs):
        features = tf.cast(inputs, tf.float32)
        _, variance = tf.nn.moments(features, axes=[0])
        spread = tf.reduce_mean(tf.sqrt(variance + 1e-8))
        channel = tf.fill(tf.concat([tf.shape(features)[:-1], [1]], axis=0), spread)
        return tf.cast(tf.concat([features, channel], axis=-1), inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)


UPSAMPLING = ("nearest", "bilinear", "subpixel", "transposed")


def upsample2x(x, filters: int, name: str, method: str, kernel: int = 3, use_bias: bool = False):
    """×2 upsampling with a learned conv, by `[model] upsampling`: resize ("nearest" or "bilinear") then conv; conv to
    4·filters then depth-to-space with ICNR ("subpixel"); or a 4×4 stride-2 transposed conv ("transposed", the
    classic DCGAN step, kept for comparison: its uneven kernel overlap leaves checkerboard artefacts)."""
    if method in ("nearest", "bilinear"):
        x = keras.layers.UpSampling2D(2, interpolation=method, name=f"{name}_resize")(x)
        return keras.layers.Conv2D(filters, kernel, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)
    if method == "subpixel":
        x = keras.layers.Conv2D(filters * 4, kernel, padding="same", use_bias=use_bias, kernel_initializer=ICNR(2),
                                name=f"{name}_conv")(x)
        return DepthToSpace(2, name=f"{name}_shuffle")(x)
    if method == "transposed":
        return keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=use_bias, name=f"{name}_conv")(x)
    raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {method!r}")


def conv(filters: int, kernel: int = 3, strides: int = 1, spectral_norm: bool = False, name: str | None = None, **kwargs) -> keras.layers.Layer:
    return _maybe_spectral(keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name, **kwargs), spectral_norm)


def dense(units: int, spectral_norm: bool = False, name: str | None = None, **kwargs) -> keras.layers.Layer:
    return _maybe_spectral(keras.layers.Dense(units, name=name, **kwargs), spectral_norm)


def _maybe_spectral(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
    """A discriminator layer, wrapped so its weight's largest singular value is 1 when asked (SNGAN)."""
    return keras.layers.SpectralNormalization(layer) if spectral_norm else layer


def upsample_steps(scale: int) -> int:
    """Number of ×2 sub-pixel steps for a power-of-two scale."""
    steps = scale.bit_length() - 1
    if scale < 2 or 1 << steps != scale:
        raise ValueError(f"scale must be a power of two (2, 4, 8), got {scale}")
    return steps


def subpixel_upsampler(x, filters: int, scale: int, activation):
    """Conv → depth-to-space(2), repeated log2(scale) times."""
    for index in range(upsample_steps(scale)):
        x = keras.layers.Conv2D(filters * 4, 3, padding="same", name=f"up{index}_conv")(x)
        x = DepthToSpace(2, name=f"up{index}_shuffle")(x)
        x = activation(f"up{index}_act")(x)
    return x


def residual_output(x, inputs, scale: int, global_skip: str, kernel: int = 3):
    """The single-channel SR output: a zero-initialised conv (TAIL_INITIALIZER) plus, unless global_skip is "none",
    the input interpolated ×scale, so an untrained generator is exactly that interpolation."""
    x = keras.layers.Conv2D(1, kernel, padding="same", name="tail", dtype="float32", kernel_initializer=TAIL_INITIALIZER)(x)
    if global_skip == "none":
        return x
    return keras.layers.Add(name="global_skip", dtype="float32")([x, Upsample(scale, global_skip, name="interpolate", dtype="float32")(inputs)])

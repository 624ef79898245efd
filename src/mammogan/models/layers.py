"""Small custom layers shared by several architectures (registered for `.keras` saving)."""

from __future__ import annotations

import keras
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


@keras.saving.register_keras_serializable(package="mammogan")
class Upsample(keras.layers.Layer):
    """Interpolating upsampling by an integer factor for any input size (global skip connections)."""

    def __init__(self, scale: int, method: str = "bicubic", **kwargs) -> None:
        super().__init__(**kwargs)
        self.scale = scale
        self.method = method

    def call(self, inputs):
        size = tf.shape(inputs)[1:3] * self.scale
        return tf.cast(tf.image.resize(tf.cast(inputs, tf.float32), size, method=self.method), inputs.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale, "method": self.method}


def conv(filters: int, kernel: int = 3, strides: int = 1, spectral_norm: bool = False, name: str | None = None, **kwargs) -> keras.layers.Layer:
    layer = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same", name=name, **kwargs)
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

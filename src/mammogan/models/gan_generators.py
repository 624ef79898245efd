"""Generators of synthetic mammogram patches from a latent vector."""

from __future__ import annotations

import keras

from ..registry import GENERATORS
from .layers import upsample2x


def dcgan_synthesis(x: keras.KerasTensor, image_size: int, filters: int, upsampling: str = "nearest") -> keras.KerasTensor:
    """The DCGAN body shared by the (conditional) generators: code vector → 4×4 → upsampling steps → tanh image.

    `upsampling` (see `layers.upsample2x`): resize-then-convolve or ICNR sub-pixel steps instead of transposed
    convolutions avoid checkerboard artefacts, which on mammograms look like fake micro-calcifications.
    """
    steps = (image_size // 4).bit_length() - 1
    if image_size < 16 or 4 << steps != image_size:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    channels = filters * min(2 ** (steps - 1), 8)
    x = keras.layers.Dense(4 * 4 * channels, use_bias=False, name="project")(x)
    x = keras.layers.Reshape((4, 4, channels), name="reshape")(x)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.ReLU(name="project_act")(x)
    for index in range(steps - 1):
        channels = filters * min(2 ** (steps - 2 - index), 8)
        x = upsample2x(x, channels, f"up{index}", upsampling)
        x = keras.layers.BatchNormalization(name=f"up{index}_bn")(x)
        x = keras.layers.ReLU(name=f"up{index}_act")(x)
    x = upsample2x(x, max(filters // 2, 8), "out", upsampling, use_bias=True) if upsampling in ("subpixel", "transposed") \
        else keras.layers.UpSampling2D(2, interpolation=upsampling, name="out_resize")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="to_image", dtype="float32")(x)
    return keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)


@GENERATORS.register("dcgan")
def build_dcgan_generator(image_size: int = 64, latent_dim: int = 128, filters: int = 64, upsampling: str = "nearest") -> keras.Model:
    """DCGAN generator: latent → 4×4 → (upsample ×2 + conv) steps → image in [-1, 1] (tanh)."""
    inputs = keras.Input((latent_dim,), name="latent")
    return keras.Model(inputs, dcgan_synthesis(inputs, image_size, filters, upsampling), name="dcgan_generator")

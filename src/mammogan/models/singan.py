"""SinGAN's pyramid geometry and per-scale networks (Shaham, Dekel and Michaeli, ICCV 2019).

Every scale has a small fully convolutional generator and a PatchGAN critic of `layers` 3×3 conv
blocks (conv, batch norm, LeakyReLU 0.2). The generator pads its input once with `layers` zero pixels
and uses valid convolutions, as the paper does, so its receptive field (11 px with 5 layers) is the
patch size its critic judges; it adds its tanh output to the upsampled coarser image, learning only
the detail its scale adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class Pyramid:
    """The image side of each scale, coarsest first, and the factor between neighbours."""

    shapes: tuple[tuple[int, int], ...]
    factor: float

    @property
    def scales(self) -> int:
        return len(self.shapes)


def pyramid_for(height: int, width: int, scale_factor: float = 0.75, min_size: int = 25, max_size: int = 250,
                num_scales: int = 0) -> Pyramid:
    """SinGAN's scales for an image: the finest is the image (shrunk so its longer side ≤ max_size), the
    coarsest has its shorter side ≈ min_size, and the factor between scales is about `scale_factor`,
    adjusted so the steps are even (as the reference code does). `num_scales` > 0 fixes the count instead.
    """
    if min(height, width) < 1:
        raise ValueError(f"an image of {height}×{width} px has no pyramid")
    shrink = min(1.0, max_size / max(height, width))
    finest = (max(1, round(height * shrink)), max(1, round(width * shrink)))
    short = min(finest)
    if short <= min_size:
        return Pyramid((finest,), 1.0)
    if num_scales <= 0:
        num_scales = math.ceil(math.log(min_size / short, scale_factor)) + 1
    if num_scales == 1:
        return Pyramid((finest,), 1.0)
    factor = (min_size / short) ** (1.0 / (num_scales - 1))
    def side(length: int, k: int) -> int:  # rounded up as the reference code does, but not for float noise (25.000001)
        return max(1, math.ceil(length * factor ** k - 1e-6))

    shapes = [(side(finest[0], k), side(finest[1], k)) for k in range(num_scales - 1, 0, -1)]
    return Pyramid((*shapes, finest), factor)


def scale_filters(scale: int, filters: int = 32, max_filters: int = 128) -> int:
    """Filters at a scale (0 = coarsest): doubled every 4 scales, as in the paper, up to `max_filters`."""
    return min(filters * 2 ** (scale // 4), max_filters)


def _initialiser(seed: int) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(0.0, 0.02, seed=seed)


def _blocks(x, filters: int, count: int, seed: int):
    for index in range(count):
        x = keras.layers.Conv2D(filters, 3, padding="valid", kernel_initializer=_initialiser(seed + index))(x)
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5,
                                            gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02, seed=seed + 50 + index))(x)
        x = keras.layers.LeakyReLU(0.2)(x)
    return x


def build_scale_generator(filters: int = 32, layers: int = 5, seed: int = 0, name: str = "singan_g") -> keras.Model:
    """[scaled noise, upsampled coarser image] (both H × W × 1, any size) → the image at this scale (H × W × 1)."""
    noise = keras.Input((None, None, 1), name="noise")
    previous = keras.Input((None, None, 1), name="previous")
    x = keras.layers.ZeroPadding2D(layers)(keras.layers.Add()([noise, previous]))
    x = _blocks(x, filters, layers - 1, seed)
    x = keras.layers.Conv2D(1, 3, padding="valid", activation="tanh", kernel_initializer=_initialiser(seed + 99))(x)
    return keras.Model([noise, previous], keras.layers.Add()([x, previous]), name=name)


def build_scale_discriminator(filters: int = 32, layers: int = 5, seed: int = 0, name: str = "singan_d") -> keras.Model:
    """An image (H × W × 1) → a map of critic scores, one per (2·layers + 1)-px patch (no padding)."""
    image = keras.Input((None, None, 1), name="image")
    x = _blocks(image, filters, layers - 1, seed)
    scores = keras.layers.Conv2D(1, 3, padding="valid", kernel_initializer=_initialiser(seed + 99))(x)
    return keras.Model(image, scores, name=name)

"""Mask-to-image networks (pix2pix): a U-Net generator fed (lesion mask, latent) and a PatchGAN discriminator.

The generator sees a binary mask in {0, 1}, shape (N, S, S, 1), and returns an image in [-1, 1]
(tanh, like the other synthetic-image generators), so every sample comes with a pixel-exact mask.
Stochasticity comes from a seeded latent vector joined at the bottleneck rather than pix2pix's
test-time dropout: the same (mask, seed) always gives the same image, and an empty mask (healthy
tissue) still yields varied patches.
"""

from __future__ import annotations

import keras

from ..registry import DISCRIMINATORS, GENERATORS
from .discriminators import _lrelu, _norm
from .layers import conv

BOTTLENECK = 4  # side of the U-Net's deepest feature map


def _depth(image_size: int) -> int:
    """Stride-2 steps from image_size down to the 4×4 bottleneck."""
    depth = (image_size // BOTTLENECK).bit_length() - 1
    if image_size < 16 or BOTTLENECK << depth != image_size:
        raise ValueError(f"image_size must be a power of two >= 16, got {image_size}")
    return depth


def spade_block(x: keras.KerasTensor, mask: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """SPADE (Park et al. 2019): parameter-free batch norm, then a per-pixel scale and shift computed from the mask.

    x_norm · (1 + γ(mask)) + β(mask); γ and β start at zero, so an untrained block is plain batch norm.
    The mask is average-pooled to the block's resolution (soft edges where a lesion covers part of a cell).
    """
    pool = mask.shape[1] // x.shape[1]
    channels = x.shape[-1]
    small = keras.layers.AveragePooling2D(pool, name=f"{name}_mask_pool")(mask) if pool > 1 else mask
    shared = keras.layers.Conv2D(min(channels, 64), 3, padding="same", activation="relu", name=f"{name}_shared")(small)
    gamma = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name=f"{name}_gamma")(shared)
    beta = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name=f"{name}_beta")(shared)
    normed = keras.layers.BatchNormalization(center=False, scale=False, name=f"{name}_norm")(x)
    scaled = keras.layers.Multiply(name=f"{name}_scale")([normed, gamma])
    return keras.layers.Add(name=f"{name}_modulated")([normed, scaled, beta])


@GENERATORS.register("pix2pix_unet")
def build_pix2pix_generator(image_size: int = 64, latent_dim: int = 128, filters: int = 64, spade: bool = False) -> keras.Model:
    """U-Net: [mask (S, S, 1), latent] → image (S, S, 1) in [-1, 1].

    Encoder: stride-2 convs down to 4×4; the latent is projected to a 4×4 map and concatenated there;
    decoder: resize-then-convolve steps (no checkerboard artefacts that could pass for calcifications)
    with batch norm, or SPADE driven by the mask when `spade`, each joined with its encoder skip.
    """
    depth = _depth(image_size)

    def width(level: int) -> int:
        return filters * min(2**level, 8)

    mask = keras.Input((image_size, image_size, 1), name="mask")
    latent = keras.Input((latent_dim,), name="latent")
    x, skips = mask, []
    for level in range(depth):
        x = keras.layers.Conv2D(width(level), 4, strides=2, padding="same", name=f"down{level}_conv")(x)
        if level > 0:
            x = keras.layers.BatchNormalization(name=f"down{level}_bn")(x)
        x = _lrelu(f"down{level}_act")(x)
        skips.append(x)
    code = keras.layers.Dense(BOTTLENECK * BOTTLENECK * width(depth - 1), name="latent_project")(latent)
    code = keras.layers.Reshape((BOTTLENECK, BOTTLENECK, width(depth - 1)), name="latent_map")(code)
    x = keras.layers.Concatenate(name="bottleneck")([x, keras.layers.ReLU(name="latent_act")(code)])
    for level in reversed(range(depth - 1)):
        x = keras.layers.UpSampling2D(2, name=f"up{level}_resize")(x)
        x = keras.layers.Conv2D(width(level), 3, padding="same", use_bias=False, name=f"up{level}_conv")(x)
        x = spade_block(x, mask, f"up{level}_spade") if spade else keras.layers.BatchNormalization(name=f"up{level}_bn")(x)
        x = keras.layers.ReLU(name=f"up{level}_act")(x)
        x = keras.layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
    x = keras.layers.UpSampling2D(2, name="out_resize")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="to_image", dtype="float32")(x)
    image = keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)
    return keras.Model([mask, latent], image, name="pix2pix_generator")


@DISCRIMINATORS.register("patchgan")
def build_patchgan_discriminator(image_size: int = 64, d_filters: int = 64, d_blocks: int = 3, spectral_norm: bool = False,
                                 d_normalization: str = "batch") -> keras.Model:
    """PatchGAN (Isola et al. 2017) on the (mask, image) pair stacked as two channels; outputs `[logit map, *features]`.

    Each logit judges one receptive-field patch, so D asks "is this texture real *for this mask*"
    locally. `d_blocks` stride-2 steps (at most down to 4×4), then two stride-1 convs.
    """
    pair = keras.Input((image_size, image_size, 2), name="mask_and_image")
    steps = max(1, min(d_blocks, _depth(image_size)))
    x = _lrelu("in_act")(conv(d_filters, 4, 2, spectral_norm, name="in_conv")(pair))
    features, filters = [x], d_filters
    for index in range(steps):
        filters = min(filters * 2, d_filters * 8)
        x = conv(filters, 4, 2 if index < steps - 1 else 1, spectral_norm, name=f"block{index}_conv")(x)
        layer = None if spectral_norm else _norm(d_normalization, f"block{index}_norm")
        x = _lrelu(f"block{index}_act")(layer(x) if layer is not None else x)
        features.append(x)
    logits = keras.layers.Conv2D(1, 4, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(pair, [logits, *features], name="patchgan_discriminator")

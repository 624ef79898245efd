"""Discriminators. Each returns a model whose outputs are `[logits, *features]`.

The intermediate feature maps feed the feature-matching loss, which needs no pretrained network
and so works offline. Logits may be one per image (VGG-style, DCGAN) or one per pixel (U-Net).
"""

from __future__ import annotations

import keras

from ..registry import DISCRIMINATORS
from .layers import LaplacianChannel, MinibatchStd, conv, dense


def _lrelu(name: str) -> keras.layers.Layer:
    return keras.layers.LeakyReLU(0.2, name=name)


def _norm(kind: str, name: str) -> keras.layers.Layer | None:
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "layer":
        return keras.layers.LayerNormalization(axis=[1, 2, 3], name=name)
    if kind == "instance":  # one group per channel: per-image, per-channel statistics
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    return None


@DISCRIMINATORS.register("vgg")
def build_vgg_discriminator(d_filters: int = 64, d_blocks: int = 4, spectral_norm: bool = False) -> keras.Model:
    """SRGAN's VGG-style discriminator for any patch size: global pooling instead of a fixed-size Dense input."""
    inputs = keras.Input((None, None, 1), name="image")
    norm = "none" if spectral_norm else "batch"
    x = _lrelu("in_act")(conv(d_filters, 3, 1, spectral_norm, name="in_conv")(inputs))
    features = []
    filters = d_filters
    for index in range(d_blocks):
        for stride in ((2, 1) if index == 0 else (1, 2)):
            x = conv(filters, 3, stride, spectral_norm, name=f"b{index}_s{stride}_conv")(x)
            layer = _norm(norm, f"b{index}_s{stride}_norm")
            x = layer(x) if layer is not None else x
            x = _lrelu(f"b{index}_s{stride}_act")(x)
        features.append(x)
        filters = min(filters * 2, d_filters * 8)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = _lrelu("fc_act")(dense(d_filters * 4, spectral_norm, name="fc")(x))
    logits = dense(1, spectral_norm, name="logits", dtype="float32")(x)
    return keras.Model(inputs, [logits, *features], name="vgg_discriminator")


@DISCRIMINATORS.register("unet")
def build_unet_discriminator(d_filters: int = 64, d_blocks: int = 3, spectral_norm: bool = True) -> keras.Model:
    """U-Net discriminator (Real-ESRGAN style): a real/fake logit per pixel, so local detail is judged."""
    inputs = keras.Input((None, None, 1), name="image")
    x = _lrelu("in_act")(conv(d_filters, 3, 1, False, name="in_conv")(inputs))
    skips, features = [x], []
    filters = d_filters
    for index in range(d_blocks):
        filters = min(filters * 2, d_filters * 8)
        x = _lrelu(f"down{index}_act")(conv(filters, 4, 2, spectral_norm, name=f"down{index}_conv")(x))
        skips.append(x)
        features.append(x)
    skips.pop()
    for index, skip in enumerate(reversed(skips)):
        x = keras.layers.UpSampling2D(2, interpolation="bilinear", name=f"up{index}_resize")(x)
        x = _lrelu(f"up{index}_act")(conv(skip.shape[-1], 3, 1, spectral_norm, name=f"up{index}_conv")(x))
        x = keras.layers.Add(name=f"up{index}_skip")([x, skip])
    x = _lrelu("out_act")(conv(d_filters, 3, 1, spectral_norm, name="out_conv")(x))
    logits = keras.layers.Conv2D(1, 3, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(inputs, [logits, *features], name="unet_discriminator")


@DISCRIMINATORS.register("dcgan")
def build_dcgan_discriminator(image_size: int = 64, d_filters: int = 64, spectral_norm: bool = False,
                              d_normalization: str = "batch", d_laplacian: bool = False,
                              d_minibatch_std: bool = False) -> keras.Model:
    """Strided-conv discriminator/critic for synthetic-image GANs (BN, LayerNorm for WGAN-GP critics, or SN).

    `d_laplacian` feeds the image's Laplacian beside it; `d_minibatch_std` adds the batch-spread channel at 4×4.
    """
    inputs = keras.Input((image_size, image_size, 1), name="image")
    x = LaplacianChannel(name="laplacian")(inputs) if d_laplacian else inputs
    x = _lrelu("in_act")(conv(d_filters, 4, 2, spectral_norm, name="in_conv")(x))
    features = [x]
    filters = d_filters
    size = image_size // 2
    index = 0
    while size > 4:
        filters = min(filters * 2, d_filters * 8)
        x = conv(filters, 4, 2, spectral_norm, name=f"down{index}_conv")(x)
        layer = None if spectral_norm else _norm(d_normalization, f"down{index}_norm")
        x = layer(x) if layer is not None else x
        x = _lrelu(f"down{index}_act")(x)
        features.append(x)
        size //= 2
        index += 1
    if d_minibatch_std:
        x = MinibatchStd(name="minibatch_std")(x)
        x = _lrelu("std_act")(conv(filters, 3, 1, spectral_norm, name="std_conv")(x))
    x = keras.layers.Flatten(name="flatten")(x)
    logits = dense(1, spectral_norm, name="logits", dtype="float32")(x)
    return keras.Model(inputs, [logits, *features], name="dcgan_discriminator")

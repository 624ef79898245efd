"""CycleGAN networks (Zhu et al., ICCV 2017): image-to-image translators and a 70×70 PatchGAN on single images.

Every network is fully convolutional on (None, None, 1) inputs in [-1, 1], so a generator trained on crops
translates whole films tile by tile. Normalisation is instance norm by default, as in the paper; with
`g_normalization` "batch" or "none" a translator is a local operator (tiled = whole-image output).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..registry import DISCRIMINATORS, GENERATORS
from .discriminators import _lrelu, _norm
from .layers import ReflectionPad2D, conv


def _normalise(x, kind: str, name: str):
    layer = _norm(kind, name)
    return layer(x) if layer is not None else x


def _conv_norm_relu(x, filters: int, kernel: int, name: str, norm: str, strides: int = 1, pad: int = 0):
    if pad:
        x = ReflectionPad2D(pad, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="valid" if pad else "same", name=f"{name}_conv")(x)
    return keras.layers.ReLU(name=f"{name}_act")(_normalise(x, norm, f"{name}_norm"))


def _up(x, filters: int, name: str, norm: str):
    """×2 by nearest resize then a 3×3 conv: the paper's transposed convolutions leave checkerboard artefacts, which on
    a mammogram look like micro-calcifications."""
    x = keras.layers.UpSampling2D(2, name=f"{name}_resize")(x)
    return _conv_norm_relu(x, filters, 3, name, norm, pad=1)


@keras.saving.register_keras_serializable(package="mammogan")
class ResidualImage(keras.layers.Layer):
    """tanh(artanh(input) + residual): the translation as a change of the input in tanh's pre-activation space, so
    the output stays in (-1, 1) and a zero residual returns the input."""

    def call(self, inputs):
        image, residual = inputs
        return tf.tanh(tf.atanh(tf.clip_by_value(tf.cast(image, tf.float32), -0.999, 0.999)) + tf.cast(residual, tf.float32))


def _to_image(x, image, residual: bool):
    """The 7×7 output conv and tanh; with `residual` its kernel starts at zero and it adds to the input (see ResidualImage)."""
    x = ReflectionPad2D(3, name="out_pad")(x)
    initializer = "zeros" if residual else "glorot_uniform"
    x = keras.layers.Conv2D(1, 7, padding="valid", name="to_image", dtype="float32", kernel_initializer=initializer)(x)
    if residual:
        return ResidualImage(name="residual_image", dtype="float32")([image, x])
    return keras.layers.Activation("tanh", name="tanh", dtype="float32")(x)


@GENERATORS.register("resnet_translator")
def build_resnet_translator(filters: int = 64, blocks: int = 9, g_normalization: str = "instance",
                            translator_skip: bool = False) -> keras.Model:
    """Zhu et al.'s ResNet generator: c7s1-f, d2f, d4f, `blocks` × R4f (6 for 128² crops, 9 for 256²), u2f, uf, c7s1-1 + tanh.

    Input sides must be multiples of 4 (two stride-2 steps).
    """
    if blocks < 1:
        raise ValueError(f"the ResNet translator needs at least one residual block ([model] blocks), got {blocks}")
    norm = g_normalization
    image = keras.Input((None, None, 1), name="image")
    x = _conv_norm_relu(image, filters, 7, "in", norm, pad=3)
    x = _conv_norm_relu(x, filters * 2, 3, "down0", norm, strides=2)
    x = _conv_norm_relu(x, filters * 4, 3, "down1", norm, strides=2)
    for index in range(blocks):
        y = _conv_norm_relu(x, filters * 4, 3, f"res{index}_a", norm, pad=1)
        y = ReflectionPad2D(1, name=f"res{index}_b_pad")(y)
        y = _normalise(keras.layers.Conv2D(filters * 4, 3, name=f"res{index}_b_conv")(y), norm, f"res{index}_b_norm")
        x = keras.layers.Add(name=f"res{index}_add")([x, y])
    x = _up(x, filters * 2, "up0", norm)
    x = _up(x, filters, "up1", norm)
    return keras.Model(image, _to_image(x, image, translator_skip), name="resnet_translator")


@GENERATORS.register("unet_translator")
def build_unet_translator(filters: int = 64, blocks: int = 4, g_normalization: str = "instance",
                          translator_skip: bool = False) -> keras.Model:
    """The pix2pix U-Net as an image translator: `blocks` stride-2 4×4 conv levels (instance norm, leaky ReLU) down,
    resize-conv levels up, each joined with its encoder skip. Input sides must be multiples of 2**blocks.

    The skips carry the input's geometry straight to the output, so it keeps structure from the first step;
    the ResNet translator changes texture more freely.
    """
    if not 1 <= blocks <= 7:
        raise ValueError(f"the U-Net translator takes 1 to 7 down-sampling levels ([model] blocks), got {blocks}")
    image = keras.Input((None, None, 1), name="image")
    x, skips = image, []
    for level in range(blocks):
        x = keras.layers.Conv2D(filters * min(2**level, 8), 4, strides=2, padding="same", name=f"down{level}_conv")(x)
        if level > 0:
            x = _normalise(x, g_normalization, f"down{level}_norm")
        x = _lrelu(f"down{level}_act")(x)
        skips.append(x)
    for level in reversed(range(blocks - 1)):
        x = _up(x, filters * min(2**level, 8), f"up{level}", g_normalization)
        x = keras.layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
    x = _up(x, filters, "out_up", g_normalization)
    return keras.Model(image, _to_image(x, image, translator_skip), name="unet_translator")


@DISCRIMINATORS.register("patchgan70")
def build_patchgan70(d_filters: int = 64, d_blocks: int = 3, spectral_norm: bool = False,
                     d_normalization: str = "instance") -> keras.Model:
    """PatchGAN on one image (Isola et al. 2017; CycleGAN's D): 4×4 convs C64-C128-C256 (stride 2) then C512 and the
    logit map (stride 1). With `d_blocks` = 3 each logit sees a 70×70 patch; outputs `[logit map, *features]`."""
    image = keras.Input((None, None, 1), name="image")
    x = _lrelu("in_act")(conv(d_filters, 4, 2, spectral_norm, name="in_conv")(image))
    features, filters = [x], d_filters
    for index in range(d_blocks):
        filters = min(filters * 2, d_filters * 8)
        x = conv(filters, 4, 2 if index < d_blocks - 1 else 1, spectral_norm, name=f"block{index}_conv")(x)
        if not spectral_norm:
            x = _normalise(x, d_normalization, f"block{index}_norm")
        x = _lrelu(f"block{index}_act")(x)
        features.append(x)
    logits = keras.layers.Conv2D(1, 4, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(image, [logits, *features], name="patchgan70")


# Each translator's source and target domain.
DIRECTIONS = {"a_to_b": ("A", "B"), "b_to_a": ("B", "A")}


def translator_file(direction: str) -> str:
    return f"generator_{direction}.keras"


def input_multiple(model: keras.Model) -> int:
    """The factor every input side must be a multiple of: 2 per stride-2 convolution of the translator."""
    strided = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and tuple(layer.strides) == (2, 2)]
    return 2 ** len(strided)


def translate(model: keras.Model, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """(N, H, W) crops in [0, 1] through a translator (which works in [-1, 1]); returns (N, H, W) in [0, 1]."""
    outputs = []
    for first in range(0, len(images), batch):
        chunk = images[first : first + batch, ..., None].astype(np.float32) * 2.0 - 1.0
        outputs.append(np.asarray(model(chunk, training=False), np.float32)[..., 0])
    return np.clip((np.concatenate(outputs) + 1.0) / 2.0, 0.0, 1.0)

"""RRDB generator (ESRGAN, Wang et al. 2018): residual-in-residual dense blocks, no batch norm."""

from __future__ import annotations

import keras

from ..registry import GENERATORS
from .layers import residual_output, subpixel_upsampler

GROWTH = 32
RESIDUAL_SCALE = 0.2


def _lrelu(name: str) -> keras.layers.Layer:
    return keras.layers.LeakyReLU(0.2, name=name)


def _dense_block(x, filters: int, name: str):
    features = [x]
    for index in range(4):
        inputs = features[0] if len(features) == 1 else keras.layers.Concatenate(name=f"{name}_cat{index}")(features)
        y = keras.layers.Conv2D(GROWTH, 3, padding="same", name=f"{name}_conv{index}")(inputs)
        features.append(_lrelu(f"{name}_act{index}")(y))
    y = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv4")(keras.layers.Concatenate(name=f"{name}_cat4")(features))
    y = keras.layers.Rescaling(RESIDUAL_SCALE, name=f"{name}_scale")(y)
    return keras.layers.Add(name=f"{name}_add")([x, y])


@GENERATORS.register("rrdb")
def build_rrdb(scale: int = 4, filters: int = 64, blocks: int = 23, global_skip: str = "bicubic") -> keras.Model:
    inputs = keras.Input((None, None, 1), name="lr")
    head = x = keras.layers.Conv2D(filters, 3, padding="same", name="head")(inputs)
    for index in range(blocks):
        block_input = x
        for dense in range(3):
            x = _dense_block(x, filters, f"rrdb{index}_d{dense}")
        x = keras.layers.Rescaling(RESIDUAL_SCALE, name=f"rrdb{index}_scale")(x)
        x = keras.layers.Add(name=f"rrdb{index}_add")([block_input, x])
    x = keras.layers.Conv2D(filters, 3, padding="same", name="trunk_out")(x)
    x = keras.layers.Add(name="trunk_skip")([head, x])
    x = subpixel_upsampler(x, filters, scale, _lrelu)
    x = keras.layers.Conv2D(filters, 3, padding="same", name="hr_conv")(x)
    x = _lrelu("hr_act")(x)
    return keras.Model(inputs, residual_output(x, inputs, scale, global_skip), name="rrdb")

"""SRResNet (Ledig et al. 2017), the SRGAN generator: residual blocks + sub-pixel upsampling.

Single-channel in/out, fully convolutional. With a global interpolated skip the network only
learns the residual detail, which converges much faster on small CPU budgets.
"""

from __future__ import annotations

import keras

from ..registry import GENERATORS
from .layers import residual_output, subpixel_upsampler


def _prelu(name: str) -> keras.layers.Layer:
    return keras.layers.PReLU(shared_axes=[1, 2], name=name)


@GENERATORS.register("srresnet")
def build_srresnet(scale: int = 4, filters: int = 64, blocks: int = 16, batch_norm: bool = False,
                   global_skip: str = "bicubic") -> keras.Model:
    inputs = keras.Input((None, None, 1), name="lr")
    x = keras.layers.Conv2D(filters, 9, padding="same", name="head")(inputs)
    x = head = _prelu("head_act")(x)
    for index in range(blocks):
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"res{index}_conv1")(x)
        if batch_norm:
            y = keras.layers.BatchNormalization(name=f"res{index}_bn1")(y)
        y = _prelu(f"res{index}_act")(y)
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"res{index}_conv2")(y)
        if batch_norm:
            y = keras.layers.BatchNormalization(name=f"res{index}_bn2")(y)
        x = keras.layers.Add(name=f"res{index}_add")([x, y])
    x = keras.layers.Conv2D(filters, 3, padding="same", name="body_out")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name="body_bn")(x)
    x = keras.layers.Add(name="body_skip")([head, x])
    x = subpixel_upsampler(x, filters, scale, _prelu)
    return keras.Model(inputs, residual_output(x, inputs, scale, global_skip, kernel=9), name="srresnet")

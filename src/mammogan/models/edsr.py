"""EDSR-style SR generator (Lim et al. 2017): plain conv-ReLU-conv residual blocks, no batch norm, 3×3 convs.

Cheaper per block than SRResNet (no PReLU, no 9×9 head and tail) and, on mammograms at CPU budgets,
the faster learner: benchmarks/bench_sr_baseline.py trains this shape as the plain baseline and
docs/results.md compares it with SRResNet. The last conv starts at zero, so with the interpolated
global skip an untrained network is exactly bicubic and training only adds detail.
"""

from __future__ import annotations

import keras

from ..registry import GENERATORS
from .layers import residual_output, subpixel_upsampler


def _relu(name: str) -> keras.layers.Layer:
    return keras.layers.ReLU(name=name)


@GENERATORS.register("edsr")
def build_edsr(scale: int = 2, filters: int = 32, blocks: int = 8, global_skip: str = "bicubic") -> keras.Model:
    inputs = keras.Input((None, None, 1), name="lr")
    x = head = keras.layers.Conv2D(filters, 3, padding="same", name="head")(inputs)
    for index in range(blocks):
        y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"res{index}_conv1")(x)
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"res{index}_conv2")(y)
        x = keras.layers.Add(name=f"res{index}_add")([x, y])
    x = keras.layers.Conv2D(filters, 3, padding="same", name="body_out")(x)
    x = keras.layers.Add(name="body_skip")([head, x])
    x = subpixel_upsampler(x, filters, scale, _relu)  # ReLU after the shuffle = ReLU before it (element-wise)
    return keras.Model(inputs, residual_output(x, inputs, scale, global_skip), name="edsr")

"""EDSR-style SR generator (Lim et al. 2017): plain conv-ReLU-conv residual blocks, no batch norm, 3×3 convs.

Cheaper per block than SRResNet (no PReLU, no 9×9 head and tail) and, on mammograms at CPU budgets,
the faster learner: benchmarks/bench_sr_baseline.py trains this shape as the plain baseline and
docs/results.md compares it with SRResNet. The last conv starts at zero, so with the interpolated
global skip an untrained network is exactly bicubic and training only adds detail.
"""

from __future__ import annotations

import keras

from ..registry import GENERATORS
from .layers import TAIL_INITIALIZER, Upsample, upsample_steps, DepthToSpace


@GENERATORS.register("edsr")
def build_edsr(scale: int = 2, filters: int = 32, blocks: int = 8, global_skip: str = "bicubic") -> keras.Model:
    upsample_steps(scale)  # refuses a scale that is not a power of two
    inputs = keras.Input((None, None, 1), name="lr")
    x = head = keras.layers.Conv2D(filters, 3, padding="same", name="head")(inputs)
    for index in range(blocks):
        y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"res{index}_conv1")(x)
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"res{index}_conv2")(y)
        x = keras.layers.Add(name=f"res{index}_add")([x, y])
    x = keras.layers.Conv2D(filters, 3, padding="same", name="body_out")(x)
    x = keras.layers.Add(name="body_skip")([head, x])
    for index in range(upsample_steps(scale)):
        x = keras.layers.Conv2D(filters * 4, 3, padding="same", activation="relu", name=f"up{index}_conv")(x)
        x = DepthToSpace(2, name=f"up{index}_shuffle")(x)
    x = keras.layers.Conv2D(1, 3, padding="same", name="tail", dtype="float32", kernel_initializer=TAIL_INITIALIZER)(x)
    if global_skip != "none":
        x = keras.layers.Add(name="global_skip", dtype="float32")([x, Upsample(scale, global_skip, name="interpolate", dtype="float32")(inputs)])
    return keras.Model(inputs, x, name="edsr")

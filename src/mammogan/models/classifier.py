"""Patch classifiers trained from scratch by the utility benchmark, registered in `CLASSIFIERS` by name.

Each factory is ``factory(image_size, filters) -> keras.Model`` ([model] image_size, [utility] filters) mapping
(N, S, S, 1) images in [0, 1] to the lesion probability (N, 1). The layer before the output is the pooled feature vector,
so a saved classifier also serves as the `domain` feature extractor of the distribution metrics.
"""

from __future__ import annotations

import keras

from ..errors import ConfigError
from ..registry import CLASSIFIERS

GROUPS = 4  # channel groups of each normalisation (filters must divide by it)


def _norm() -> keras.layers.Layer:
    """Group norm, not batch norm: a few dozen steps on a few dozen patches leave batch norm's moving
    averages far from the data, so test-time outputs would differ from what training saw."""
    return keras.layers.GroupNormalization(groups=GROUPS)


def _residual_block(inputs: keras.KerasTensor, width: int, stride: int) -> keras.KerasTensor:
    """A ResNet basic block (two normalised 3×3 convolutions) with a projected shortcut when the shape changes."""
    layers = keras.layers
    hidden = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(inputs)
    hidden = layers.ReLU()(_norm()(hidden))
    hidden = _norm()(layers.Conv2D(width, 3, padding="same", use_bias=False)(hidden))
    shortcut = inputs
    if stride != 1 or inputs.shape[-1] != width:
        shortcut = _norm()(layers.Conv2D(width, 1, strides=stride, use_bias=False)(inputs))
    return layers.ReLU()(layers.Add()([hidden, shortcut]))


@CLASSIFIERS.register("small_resnet")
def build_small_resnet(image_size: int, filters: int = 16) -> keras.Model:
    """A stride-2 stem and three residual stages (filters, 2×, 4×; the last two halve the size): 78 k weights at 16."""
    if filters % GROUPS:
        raise ConfigError(f"small_resnet: filters = {filters} must be a multiple of {GROUPS} (its normalisation groups).")
    layers = keras.layers
    inputs = keras.Input((image_size, image_size, 1))
    hidden = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(inputs)
    hidden = layers.ReLU()(_norm()(hidden))
    for stage in range(3):
        hidden = _residual_block(hidden, filters * 2**stage, 1 if stage == 0 else 2)
    features = layers.GlobalAveragePooling2D(name="features")(hidden)
    outputs = layers.Dense(1, activation="sigmoid", name="lesion_probability")(features)
    return keras.Model(inputs, outputs, name="small_resnet")

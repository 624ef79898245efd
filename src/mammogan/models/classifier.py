"""Patch classifiers of the utility studies, registered in `CLASSIFIERS` by name.

Each factory takes [model] image_size, the [utility] keys the catalog lists for it and `outputs`, and maps
(N, S, S, 1) images in [0, 1] to the lesion probability (N, 1) when `outputs` is 1, else to the probabilities of
`outputs` classes. `small_resnet` trains from scratch; `efficientnet_b0` and `resnet50` fine-tune a Keras
application backbone from a local ImageNet weights file (never downloaded). The layer before the output is the
pooled feature vector, so a saved classifier also serves as the `domain` feature extractor of the distribution metrics.
"""

from __future__ import annotations

from pathlib import Path

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


def _head(features: keras.KerasTensor, outputs: int) -> keras.KerasTensor:
    if outputs == 1:
        return keras.layers.Dense(1, activation="sigmoid", name="lesion_probability")(features)
    return keras.layers.Dense(outputs, activation="softmax", name="class_probabilities")(features)


@CLASSIFIERS.register("small_resnet")
def build_small_resnet(image_size: int, filters: int = 16, outputs: int = 1) -> keras.Model:
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
    return keras.Model(inputs, _head(features, outputs), name="small_resnet")


def _pretrained(application: type, scale: float, offset: float, name: str, image_size: int, backbone_weights: Path | None,
                outputs: int) -> keras.Model:
    """A Keras application without its top, loaded from `backbone_weights`, on grey patches repeated to RGB and
    mapped to the input range the backbone was trained on (x · scale + offset)."""
    if backbone_weights is None:
        raise ConfigError(f"{name}: [utility] backbone_weights is not set; a pretrained backbone needs its local ImageNet "
                          f"weights file (the Keras applications' '*_notop.h5'); MammoGAN never downloads weights.")
    if not Path(backbone_weights).is_file():
        raise ConfigError(f"{name}: [utility] backbone_weights = {backbone_weights}: no such file.")
    inputs = keras.Input((image_size, image_size, 1))
    rgb = keras.layers.Concatenate()([inputs] * 3)
    scaled = keras.layers.Rescaling(scale, offset)(rgb)
    try:
        backbone = application(include_top=False, weights=str(backbone_weights), input_shape=(image_size, image_size, 3))
    except (ValueError, OSError) as error:
        raise ConfigError(f"{name}: [utility] backbone_weights = {backbone_weights} cannot be loaded into the backbone: {error}") from None
    features = keras.layers.GlobalAveragePooling2D(name="features")(backbone(scaled))
    return keras.Model(inputs, _head(features, outputs), name=name)


@CLASSIFIERS.register("efficientnet_b0")
def build_efficientnet_b0(image_size: int, backbone_weights: Path | None = None, outputs: int = 1) -> keras.Model:
    """EfficientNetB0 (5.3 M weights), which rescales 0–255 input itself."""
    return _pretrained(keras.applications.EfficientNetB0, 255.0, 0.0, "efficientnet_b0", image_size, backbone_weights, outputs)


@CLASSIFIERS.register("resnet50")
def build_resnet50(image_size: int, backbone_weights: Path | None = None, outputs: int = 1) -> keras.Model:
    """ResNet50 (23.6 M weights); caffe-style input: 0–255 less the ImageNet channel means (114.8 on average for grey)."""
    return _pretrained(keras.applications.ResNet50, 255.0, -114.8, "resnet50", image_size, backbone_weights, outputs)

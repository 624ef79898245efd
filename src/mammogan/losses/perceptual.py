"""VGG19 perceptual loss (SRGAN's content loss), only from weights that are on this machine.

Training must never stall on a download: `imagenet` means "the file Keras would have cached", and
when it is not there the error says exactly which file to put where.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from ..errors import ConfigError

IMAGENET_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
FEATURE_LAYER = "block5_conv4"  # SRGAN's VGG54: features before the 5th pooling


def weights_file(setting: str, config_dir: Path) -> Path:
    """The local weights file for a `[train] perceptual_weights` setting ('imagenet' or a path)."""
    if setting == "imagenet":
        path = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / IMAGENET_FILE
        if not path.is_file():
            raise ConfigError(
                f"[train] perceptual_weights = \"imagenet\": the VGG19 ImageNet weights are not available offline. "
                f"Download {IMAGENET_FILE} (Keras applications, no top) on a connected machine and copy it to {path}, "
                "or set perceptual_weights to the file's path. MammoGAN never downloads weights during training.")
        return path
    path = Path(setting).expanduser()
    path = path if path.is_absolute() else config_dir / path
    if not path.is_file():
        raise ConfigError(f"[train] perceptual_weights = {setting!r}: file {path} not found.")
    return path


def vgg_feature_model(path: Path, layer: str = FEATURE_LAYER) -> keras.Model:
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    try:
        vgg.load_weights(str(path))
    except (ValueError, OSError) as error:
        raise ConfigError(f"[train] perceptual_weights: {path} is not a VGG19 (no top) weights file: {error}") from None
    model = keras.Model(vgg.input, vgg.get_layer(layer).output, name="vgg19_features")
    model.trainable = False
    return model


def perceptual_loss_per_example(features: keras.Model, target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
    """Mean squared difference of VGG features per example (greyscale [0, 1] → ImageNet 'caffe' input)."""

    def prepare(images: tf.Tensor) -> tf.Tensor:
        rgb = tf.repeat(tf.cast(images, tf.float32) * 255.0, 3, axis=-1)
        return keras.applications.vgg19.preprocess_input(rgb)

    real = tf.cast(features(prepare(target), training=False), tf.float32)
    fake = tf.cast(features(prepare(output), training=False), tf.float32)
    difference = tf.square(real - fake)
    return tf.reduce_mean(difference, axis=[1, 2, 3])

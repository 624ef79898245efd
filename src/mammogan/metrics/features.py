"""Feature extractors for the distribution metrics, registered in `FEATURE_EXTRACTORS` by name.

Every factory has the signature ``factory(path=None, *, seed=0, batch_size=32)`` and returns a
`FeatureExtractor`; each uses only the options that concern it:

- ``inception``: InceptionV3 (ImageNet, no top, average pooling; 2048 features). Weights come
  from `path` or the Keras cache and are never downloaded: when the file is missing, a ConfigError
  says which file to put where. FID is only comparable with the literature under these weights.
- ``random_cnn``: a small, randomly initialised CNN fixed by `seed` (256 features). Needs no
  files; its name says it is untrained, so its numbers are never mistaken for FID proper.
- ``domain``: the penultimate layer of a Keras classifier trained by the project on real
  mammogram patches (the `.keras` file that the downstream-utility benchmark / extractor training
  saves), given by `path`. Fed images in [0, 1] at the classifier's input size.

`extractor.name` names the extractor in output tables; `extractor.features(images)` maps
(N, H, W, 1) float images in [0, 1] to an (N, D) float64 array, replicating grey to three
channels and resizing as the network needs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ..errors import ConfigError
from ..registry import FEATURE_EXTRACTORS

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_WEIGHTS_FILE
)
INCEPTION_SIZE = (299, 299)
RANDOM_CNN_SIZE = (128, 128)
RANDOM_CNN_FILTERS = (32, 64, 128, 256)


class FeatureExtractor:
    """A Keras model from images to feature vectors, with the resizing and scaling it expects."""

    def __init__(
        self,
        name: str,
        model: keras.Model,
        preprocess: Callable[[tf.Tensor], tf.Tensor],
        batch_size: int = 32,
    ) -> None:
        self.name = name
        self.model = model
        self.preprocess = preprocess
        self.batch_size = batch_size
        _, height, width, channels = model.input_shape
        self.input_size = None if height is None or width is None else (int(height), int(width))
        self.channels = int(channels)

    def _network_input(self, images: np.ndarray) -> tf.Tensor:
        batch = tf.convert_to_tensor(images, dtype=tf.float32)
        if self.input_size is not None and tuple(batch.shape[1:3]) != self.input_size:
            batch = tf.image.resize(batch, self.input_size, method="bilinear", antialias=True)
        if self.channels != 1:
            batch = tf.repeat(batch, self.channels, axis=-1)
        return self.preprocess(batch)

    def features(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 1) float images in [0, 1] → (N, D) float64 features."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 1 or images.shape[0] == 0:
            raise ValueError(f"{self.name}: expected (N, H, W, 1) greyscale images, got shape {images.shape}")
        if not np.issubdtype(images.dtype, np.floating) or images.min() < 0.0 or images.max() > 1.0:
            raise ValueError(
                f"{self.name}: expected float images in [0, 1], got {images.dtype} in [{images.min()}, {images.max()}]"
            )
        parts = [
            np.asarray(self.model.predict_on_batch(self._network_input(images[start : start + self.batch_size])))
            for start in range(0, images.shape[0], self.batch_size)
        ]
        return np.concatenate(parts).astype(np.float64)


def keras_cache_file(file_name: str) -> Path:
    """Where `keras.utils.get_file` caches a model file: $KERAS_HOME/models, else ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / file_name


def _inception_preprocess(batch: tf.Tensor) -> tf.Tensor:
    return keras.applications.inception_v3.preprocess_input(batch * 255.0)


@FEATURE_EXTRACTORS.register("inception")
def build_inception(path: str | Path | None = None, *, seed: int = 0, batch_size: int = 32) -> FeatureExtractor:
    """InceptionV3 pool features from a local weights file (`path`, else the Keras cache); no download."""
    if path is not None:
        weights = Path(path)
        if not weights.is_file():
            raise ConfigError(
                f"{weights}: InceptionV3 weights file not found. Give the path of {INCEPTION_WEIGHTS_FILE} "
                f"(download it once from {INCEPTION_WEIGHTS_URL})."
            )
    else:
        weights = keras_cache_file(INCEPTION_WEIGHTS_FILE)
        if not weights.is_file():
            raise ConfigError(
                f"InceptionV3 ImageNet weights are not available offline: put {INCEPTION_WEIGHTS_FILE} at "
                f"{weights} (download it once from {INCEPTION_WEIGHTS_URL} on a connected machine), or give "
                "the file's path to the 'inception' feature extractor. MammoGAN never downloads weights; "
                "the 'random_cnn' extractor needs none."
            )
    try:
        model = keras.applications.InceptionV3(
            include_top=False, weights=str(weights), pooling="avg", input_shape=(*INCEPTION_SIZE, 3)
        )
    except (ValueError, OSError) as error:
        raise ConfigError(
            f"{weights}: not usable as InceptionV3 no-top weights ({error}). Expected {INCEPTION_WEIGHTS_FILE} "
            f"from {INCEPTION_WEIGHTS_URL}."
        ) from error
    return FeatureExtractor(f"inception_v3:{weights.name}", model, _inception_preprocess, batch_size)


def _centre(batch: tf.Tensor) -> tf.Tensor:
    return batch * 2.0 - 1.0


@FEATURE_EXTRACTORS.register("random_cnn")
def build_random_cnn(path: str | Path | None = None, *, seed: int = 0, batch_size: int = 32) -> FeatureExtractor:
    """An untrained CNN whose weights depend only on `seed` (`path` is not used)."""
    inputs = keras.Input(shape=(*RANDOM_CNN_SIZE, 1))
    hidden = inputs
    for index, filters in enumerate(RANDOM_CNN_FILTERS):
        hidden = keras.layers.Conv2D(
            filters,
            3,
            strides=2,
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=seed * 100 + index),
        )(hidden)
    outputs = keras.layers.GlobalAveragePooling2D()(hidden)
    model = keras.Model(inputs, outputs, name=f"random_cnn_seed{seed}")
    return FeatureExtractor(f"random_cnn:seed{seed}:untrained", model, _centre, batch_size)


@FEATURE_EXTRACTORS.register("domain")
def build_domain(path: str | Path | None = None, *, seed: int = 0, batch_size: int = 32) -> FeatureExtractor:
    """Penultimate-layer features of the project's own classifier saved at `path` (`seed` is not used)."""
    produced_by = (
        "the domain extractor is a Keras classifier trained on real patches and saved as .keras by the "
        "downstream-utility benchmark (extractor training)"
    )
    if path is None:
        raise ConfigError(f"feature extractor 'domain' needs the path of its classifier: {produced_by}.")
    model_file = Path(path)
    if not model_file.is_file():
        raise ConfigError(f"{model_file}: domain classifier not found; {produced_by}. Train it first.")
    try:
        classifier = keras.saving.load_model(model_file, compile=False)
    except (ValueError, OSError) as error:
        raise ConfigError(f"{model_file}: not a loadable Keras model ({error}); {produced_by}.") from error
    if len(classifier.layers) < 2:
        raise ConfigError(f"{model_file}: the classifier has no penultimate layer to take features from.")
    penultimate = classifier.layers[-2].output
    if len(penultimate.shape) == 4:
        penultimate = keras.layers.GlobalAveragePooling2D()(penultimate)
    elif len(penultimate.shape) != 2:
        penultimate = keras.layers.Flatten()(penultimate)
    model = keras.Model(classifier.inputs, penultimate, name=f"domain_{model_file.stem}")
    return FeatureExtractor(f"domain:{model_file.name}", model, lambda batch: batch, batch_size)

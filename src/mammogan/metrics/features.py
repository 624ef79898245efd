"""Feature extractors for the distribution metrics, registered in `FEATURE_EXTRACTORS` by name.

Every factory has the signature ``factory(path=None, *, seed=0, batch_size=32)`` and returns a
`FeatureExtractor`; each uses only the options that concern it:

- ``inception``: InceptionV3 (ImageNet, average pooling; 2048 features). Weights come from `path`
  or the Keras cache and are never downloaded: when the file is missing, a ConfigError says which
  file to put where. FID is only comparable with the literature under these weights. With the
  with-top weights file (the cache's is preferred to the no-top one) the ImageNet softmax head
  gives the class probabilities of the Inception Score.
- ``random_cnn``: a small, randomly initialised CNN fixed by `seed` (256 features). Needs no
  files; its name says it is untrained, so its numbers are never mistaken for FID proper.
- ``domain``: the penultimate layer of a Keras classifier trained by the project on real
  mammogram patches, given by `path`: a version folder `domain_extractor/v<NNN>` written by the
  `domain_extractor` task (its `card.json` names the extractor `domain:v<NNN>` and records its
  accuracy), or any `.keras` classifier (e.g. one the utility benchmark saved). Fed images in
  [0, 1] at the classifier's input size; its output gives the class probabilities.

`extractor.name` names the extractor in output tables; `extractor.features(images)` maps
(N, H, W, 1) float images in [0, 1] to an (N, D) float64 array, replicating grey to three
channels and resizing as the network needs. `extractor.embed(images)` also returns class
probabilities (N, classes) when the extractor has a classifier head, else None with the reason in
`extractor.no_classifier_reason`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import keras
import numpy as np
import tensorflow as tf

from ..errors import ConfigError
from ..registry import FEATURE_EXTRACTORS
from ..core.logs import get_logger

log = get_logger("evaluate")

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + INCEPTION_WEIGHTS_FILE
)
INCEPTION_TOP_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
INCEPTION_SIZE = (299, 299)
RANDOM_CNN_SIZE = (128, 128)
RANDOM_CNN_FILTERS = (32, 64, 128, 256)
DOMAIN_MODEL_FILE = "classifier.keras"  # inside a domain_extractor/v<NNN> folder, beside DOMAIN_CARD_FILE
DOMAIN_CARD_FILE = "card.json"


@dataclass(frozen=True)
class Embedding:
    """Features of a batch of images and, when the extractor has a classifier head, its class probabilities."""

    features: np.ndarray  # (N, D) float64
    probabilities: np.ndarray | None  # (N, classes) float64, rows summing to 1


class FeatureExtractor:
    """A Keras model from images to feature vectors, with the resizing and scaling it expects.

    `model` outputs the features, or [features, class scores] when `no_classifier_reason` is empty.
    Class scores are softmax rows, or one sigmoid column P(class 1) that becomes [1 - p, p].
    """

    def __init__(
        self,
        name: str,
        model: keras.Model,
        preprocess: Callable[[tf.Tensor], tf.Tensor],
        batch_size: int = 32,
        no_classifier_reason: str = "",
    ) -> None:
        self.name = name
        self.model = model
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.no_classifier_reason = no_classifier_reason
        _, height, width, channels = model.inputs[0].shape
        self.input_size = None if height is None or width is None else (int(height), int(width))
        self.channels = int(channels)
        self._patch_model: keras.Model | None = None  # built on the first patch_features call

    @property
    def has_classifier(self) -> bool:
        return not self.no_classifier_reason

    def _network_input(self, images: np.ndarray) -> tf.Tensor:
        batch = tf.convert_to_tensor(images, dtype=tf.float32)
        if self.input_size is not None and tuple(batch.shape[1:3]) != self.input_size:
            batch = tf.image.resize(batch, self.input_size, method="bilinear", antialias=True)
        if self.channels != 1:
            batch = tf.repeat(batch, self.channels, axis=-1)
        return self.preprocess(batch)

    def embed(self, images: np.ndarray) -> Embedding:
        """(N, H, W, 1) float images in [0, 1] → features and (if there is a head) class probabilities."""
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 1 or images.shape[0] == 0:
            raise ValueError(f"{self.name}: expected (N, H, W, 1) greyscale images, got shape {images.shape}")
        if not np.issubdtype(images.dtype, np.floating) or images.min() < 0.0 or images.max() > 1.0:
            raise ValueError(
                f"{self.name}: expected float images in [0, 1], got {images.dtype} in [{images.min()}, {images.max()}]"
            )
        outputs = self._predict(self.model, images)
        if not self.has_classifier:
            return Embedding(np.concatenate([np.asarray(o) for o in outputs]).astype(np.float64), None)
        features = np.concatenate([np.asarray(o[0]) for o in outputs]).astype(np.float64)
        scores = np.concatenate([np.asarray(o[1]) for o in outputs]).astype(np.float64)
        if scores.shape[1] == 1:  # sigmoid: P(class 1)
            scores = np.concatenate([1.0 - scores, scores], axis=1)
        return Embedding(features, scores)

    def _predict(self, model: keras.Model, images: np.ndarray) -> list:
        """`model`'s outputs for the images, batch by batch (memory stays bounded)."""
        return [model.predict_on_batch(self._network_input(images[start : start + self.batch_size]))
                for start in range(0, images.shape[0], self.batch_size)]

    def features(self, images: np.ndarray) -> np.ndarray:
        """(N, H, W, 1) float images in [0, 1] → (N, D) float64 features."""
        return self.embed(images).features

    def patch_features(self, images: np.ndarray) -> list[np.ndarray]:
        """Per image, the feature vector at every position of an early feature map: (positions, channels) float64.

        The map is the deepest one that keeps at least a quarter of the network's input side (InceptionV3: the
        147² × 64 map before its first pooling, as SIFID uses; random_cnn: 32² × 64), so its statistics describe
        local texture rather than the whole image. SIFID compares these statistics.
        """
        if self._patch_model is None:
            side = self.input_size[0] if self.input_size is not None else images.shape[1]
            maps = [layer for layer in self.model.layers if not isinstance(layer, keras.layers.InputLayer)
                    and len(layer.output.shape) == 4 and layer.output.shape[1] is not None and layer.output.shape[1] * 4 >= side]
            if not maps:
                raise ValueError(f"{self.name}: no feature map of at least a quarter of the input side for patch statistics")
            self._patch_model = keras.Model(self.model.inputs, maps[-1].output)
        return [m.reshape(-1, m.shape[-1]).astype(np.float64) for batch in self._predict(self._patch_model, images)
                for m in np.asarray(batch)]


def keras_cache_file(file_name: str) -> Path:
    """Where `keras.utils.get_file` caches a model file: $KERAS_HOME/models, else ~/.keras/models."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / file_name


def _inception_preprocess(batch: tf.Tensor) -> tf.Tensor:
    return keras.applications.inception_v3.preprocess_input(batch * 255.0)


def _has_imagenet_head(weights: Path) -> bool:
    """Whether a Keras weights file holds InceptionV3's 1000-class `predictions` layer (the with-top file)."""
    names: list[str] = []
    try:
        with h5py.File(weights, "r") as handle:
            handle.visit(names.append)
    except OSError:
        return False  # not HDF5: loading reports it
    return any(name.split("/")[-1] == "predictions" for name in names)


def _inception_weights(path: str | Path | None) -> Path:
    """The weights file given, else the Keras cache's with-top file, else its no-top file; never downloaded."""
    if path is not None:
        weights = Path(path)
        if not weights.is_file():
            raise ConfigError(
                f"{weights}: InceptionV3 weights file not found. Give the path of {INCEPTION_WEIGHTS_FILE} "
                f"(download it once from {INCEPTION_WEIGHTS_URL}), or of {INCEPTION_TOP_WEIGHTS_FILE} "
                "to get the classifier score too."
            )
        return weights
    for candidate in (INCEPTION_TOP_WEIGHTS_FILE, INCEPTION_WEIGHTS_FILE):
        if keras_cache_file(candidate).is_file():
            return keras_cache_file(candidate)
    raise ConfigError(
        f"InceptionV3 ImageNet weights are not available offline: put {INCEPTION_WEIGHTS_FILE} at "
        f"{keras_cache_file(INCEPTION_WEIGHTS_FILE)} (download it once from {INCEPTION_WEIGHTS_URL} on a connected "
        f"machine; {INCEPTION_TOP_WEIGHTS_FILE} from the same folder also gives the classifier score), or give "
        "the file's path to the 'inception' feature extractor. MammoGAN never downloads weights; "
        "the 'random_cnn' extractor needs none."
    )


@FEATURE_EXTRACTORS.register("inception")
def build_inception(path: str | Path | None = None, *, seed: int = 0, batch_size: int = 32) -> FeatureExtractor:
    """InceptionV3 pool features (and ImageNet softmax with the with-top file) from local weights; no download."""
    weights = _inception_weights(path)
    with_top = _has_imagenet_head(weights)
    try:
        network = keras.applications.InceptionV3(
            include_top=with_top, weights=str(weights), pooling="avg", input_shape=(*INCEPTION_SIZE, 3)
        )
    except (ValueError, OSError) as error:
        raise ConfigError(
            f"{weights}: not usable as InceptionV3 weights ({error}). Expected {INCEPTION_WEIGHTS_FILE} "
            f"from {INCEPTION_WEIGHTS_URL} (or {INCEPTION_TOP_WEIGHTS_FILE} from the same folder)."
        ) from error
    name = f"inception_v3:{weights.name}"
    if not with_top:
        reason = f"{weights.name} has no ImageNet classifier head (use {INCEPTION_TOP_WEIGHTS_FILE} for the classifier score)"
        return FeatureExtractor(name, network, _inception_preprocess, batch_size, reason)
    model = keras.Model(network.input, [network.get_layer("avg_pool").output, network.output], name="inception_v3_head")
    return FeatureExtractor(name, model, _inception_preprocess, batch_size)


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
    return FeatureExtractor(f"random_cnn:seed{seed}:untrained", model, _centre, batch_size,
                            "random_cnn is an untrained feature network without a classifier head")


def _domain_files(path: Path) -> tuple[Path, dict[str, object] | None]:
    """The classifier file and its card (None for a bare .keras) for a version folder or a .keras path."""
    model_file = path / DOMAIN_MODEL_FILE if path.is_dir() else path
    card_file = model_file.parent / DOMAIN_CARD_FILE
    if not card_file.is_file():
        return model_file, None
    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise ConfigError(f"{card_file}: not a readable domain-extractor card ({error}).") from error
    if not isinstance(card, dict) or not isinstance(card.get("version"), str):
        raise ConfigError(f"{card_file}: a domain-extractor card needs a 'version' string, like the ones training writes.")
    return model_file, card


@FEATURE_EXTRACTORS.register("domain")
def build_domain(path: str | Path | None = None, *, seed: int = 0, batch_size: int = 32) -> FeatureExtractor:
    """Penultimate-layer features and class probabilities of the project's own patch classifier at `path`.

    `path` is a `domain_extractor/v<NNN>` folder (or its classifier.keras), named `domain:v<NNN>` after
    its card, or any other .keras classifier, named after its file (`seed` is not used).
    """
    produced_by = (
        f"train one with a `[model] task = \"domain_extractor\"` config (it writes domain_extractor/v<NNN>/"
        f"{DOMAIN_MODEL_FILE}; see projects/Utility/DomainExtractor-MIAS), or give a .keras classifier such as "
        "those the downstream-utility benchmark saves"
    )
    if path is None:
        raise ConfigError(f"feature extractor 'domain' needs the path of its classifier: {produced_by}.")
    model_file, card = _domain_files(Path(path))
    if not model_file.is_file():
        raise ConfigError(f"{model_file}: domain classifier not found; {produced_by}.")
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
    model = keras.Model(classifier.inputs, [penultimate, classifier.outputs[0]], name=f"domain_{model_file.stem}")
    if card is None:
        return FeatureExtractor(f"domain:{model_file.name}", model, lambda batch: batch, batch_size)
    name = f"domain:{card['version']}"
    log.info("Feature extractor %s: %s, classes %s, valid accuracy %s, test accuracy %s (%s)", name, model_file,
             card.get("classes"), card.get("valid", {}).get("accuracy"), card.get("test", {}).get("accuracy"),
             model_file.parent / DOMAIN_CARD_FILE)
    return FeatureExtractor(name, model, lambda batch: batch, batch_size)

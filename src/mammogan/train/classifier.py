"""Training the patch classifier of the utility study and the domain feature extractor (Keras fit, class-balanced)."""

from __future__ import annotations

import keras
import numpy as np

from ..config.loader import Config
from ..data.labelled_patches import CLASSES, PatchSet
from ..registry import CLASSIFIERS


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights that give each class the same total weight (lesions are the minority)."""
    counts = np.bincount(labels, minlength=len(CLASSES))
    return (len(labels) / (len(CLASSES) * counts[labels])).astype(np.float32)


def train_classifier(config: Config, seed: int, train: PatchSet, valid: PatchSet) -> tuple[keras.Model, int]:
    """The [utility] classifier trained from scratch with `seed` (weights and batch order), class-balanced.

    Returns the model with the weights of the epoch of lowest class-balanced `valid` loss, and that epoch (from 1).
    """
    keras.utils.set_random_seed(seed)
    build = CLASSIFIERS.get(config.utility.classifier, f"{config.path}: [utility] classifier")
    model = build(**config.arguments_for("classifier", config.utility.classifier))
    model.compile(optimizer=keras.optimizers.Adam(config.utility.learning_rate), loss="binary_crossentropy")
    best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.utility.epochs, restore_best_weights=True)
    validation = (valid.images[..., None], valid.labels.astype(np.float32), balanced_weights(valid.labels))
    model.fit(train.images[..., None], train.labels.astype(np.float32), sample_weight=balanced_weights(train.labels),
              batch_size=config.train.batch_size, epochs=config.utility.epochs, validation_data=validation,
              shuffle=True, verbose=0, callbacks=[best])
    return model, best.best_epoch + 1


def lesion_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """P(lesion) of (N, S, S) patches; direct calls in chunks of 256, so no per-model retracing."""
    return np.concatenate([np.asarray(model(images[start : start + 256, ..., None], training=False))[:, 0]
                           for start in range(0, len(images), 256)])

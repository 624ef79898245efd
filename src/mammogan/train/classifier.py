"""Training the patch classifier of the utility study and the domain feature extractor (Keras fit, class-balanced)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..data.labelled_patches import CLASSES, PatchSet
from ..registry import CLASSIFIERS


def balanced_weights(labels: np.ndarray, classes: int = len(CLASSES)) -> np.ndarray:
    """Per-sample weights that give each class the same total weight (lesions are the minority)."""
    counts = np.bincount(labels, minlength=classes)
    return (len(labels) / (np.count_nonzero(counts) * counts[labels])).astype(np.float32)


def train_classifier(config: Config, seed: int, train: PatchSet, valid: PatchSet, outputs: int = 1) -> tuple[keras.Model, int]:
    """The [utility] classifier trained with `seed` (weights and batch order), class-balanced: one sigmoid output
    (P(lesion), labels 0/1) or a softmax over `outputs` classes (labels 0 … outputs-1).

    Returns the model with the weights of the epoch of lowest class-balanced `valid` loss, and that epoch (from 1).
    """
    keras.backend.clear_session()  # a study trains hundreds: drop the previous models' graphs
    keras.utils.set_random_seed(seed)
    build = CLASSIFIERS.get(config.utility.classifier, f"{config.path}: [utility] classifier")
    model = build(**config.arguments_for("classifier", config.utility.classifier), outputs=outputs)
    binary = outputs == 1
    model.compile(optimizer=keras.optimizers.Adam(config.utility.learning_rate),
                  loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy")
    classes = 2 if binary else outputs
    targets = (lambda labels: labels.astype(np.float32)) if binary else (lambda labels: labels.astype(np.int32))
    best = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.utility.epochs, restore_best_weights=True)
    validation = (valid.images[..., None], targets(valid.labels), balanced_weights(valid.labels, classes))
    model.fit(_even_batches(train.images[..., None], targets(train.labels), balanced_weights(train.labels, classes),
                            config.train.batch_size, seed),
              epochs=config.utility.epochs, validation_data=validation, shuffle=False, verbose=0, callbacks=[best])
    return model, best.best_epoch + 1


def _even_batches(images: np.ndarray, targets: np.ndarray, weights: np.ndarray, batch_size: int, seed: int) -> tf.data.Dataset:
    """Reshuffled every epoch, in batches of one even size (the last partial batch dropped, a different one each epoch).

    Why: on TF 2.21's CPU oneDNN kernels a training step on some odd batch sizes (3, 5, 7, ...) corrupts the heap
    and kills the process ("double free or corruption"); Keras' own batching ends each epoch with whatever is left.
    """
    size = min(batch_size, len(targets))
    size -= size % 2 if size > 1 else 0
    dataset = tf.data.Dataset.from_tensor_slices((images, targets, weights))
    return dataset.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True).batch(size, drop_remainder=True)


def class_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The classifier's outputs (N, outputs) for (N, S, S) patches; direct calls in chunks of 256, so no per-model retracing."""
    return np.concatenate([np.asarray(model(images[start : start + 256, ..., None], training=False))
                           for start in range(0, len(images), 256)])


def lesion_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """P(lesion) of (N, S, S) patches from a one-output classifier."""
    return class_probabilities(model, images)[:, 0]

"""Latent vectors, class labels and batched sampling of trained generators (numpy in, numpy out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras
import numpy as np
import tensorflow as tf


@dataclass(frozen=True)
class Conditions:
    """What a generator is fed besides its latents, for `count` samples (a family decides; None: not conditioned)."""

    count: int
    labels: np.ndarray | None = None  # (count,) class ids of a conditional generator
    masks: np.ndarray | None = None  # (count, H, W) in {0, 1} of a mask-to-image generator
    columns: list[dict[str, object]] = field(default_factory=list)  # per sample: extra manifest columns


def sample_name(seed: int, index: int) -> str:
    """File name of synthetic sample `index` of latent seed `seed` (`infer` writes it, `evaluate` names its samples alike)."""
    return f"synthetic_s{seed}_{index:05d}.png"


def latent_batch(count: int, latent_dim: int, seed: int) -> np.ndarray:
    """Seeded standard-normal latents: the same seed always gives the same samples."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def to_unit_range(generated: np.ndarray) -> np.ndarray:
    """Generator output (tanh range, (N, H, W, 1)) → images in [0, 1], shape (N, H, W)."""
    return np.clip((np.asarray(generated, dtype=np.float32)[..., 0] + 1.0) / 2.0, 0.0, 1.0)


def class_count(model: keras.Model) -> int:
    """Classes of a conditional generator (inputs [latent, class_id]); 0 for an unconditional one."""
    return model.get_layer("class_embedding").input_dim if any(layer.name == "class_embedding" for layer in model.layers) else 0


def balanced_labels(count: int, classes: int) -> np.ndarray:
    """Class ids 0, 1, ..., classes-1, 0, 1, ...: `count` samples spread evenly over the classes."""
    return (np.arange(count) % classes).astype(np.int32)


def sample_images(model: keras.Model, count: int, latent_dim: int, seed: int, batch: int = 64,
                  labels: np.ndarray | None = None, masks: np.ndarray | None = None) -> np.ndarray:
    """`count` generated images in [0, 1], in batches so memory stays bounded.

    A conditional generator gets `labels` (class ids, one per image; default: balanced over its classes);
    a mask-to-image generator (inputs [mask, latent]) gets `masks`, (count, H, W) in {0, 1}.
    """
    latents = latent_batch(count, latent_dim, seed)
    inputs = None  # the two inputs of a conditioned generator
    classes = class_count(model)
    if masks is not None:
        inputs = (np.asarray(masks, np.float32)[..., None], latents)
    elif classes:
        labels = balanced_labels(count, classes) if labels is None else np.asarray(labels, np.int32)
        inputs = (latents, labels[:, None])
    if inputs is not None:
        run = tf.function(lambda a, b: tf.cast(model([a, b], training=False), tf.float32), reduce_retracing=True)
        chunks = [run(inputs[0][i : i + batch], inputs[1][i : i + batch]).numpy() for i in range(0, count, batch)]
    else:
        runner = make_runner(model)
        chunks = [runner(latents[i : i + batch]) for i in range(0, count, batch)]
    return to_unit_range(np.concatenate(chunks))


def make_runner(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled batch → batch function that accepts any spatial size without retracing per call."""
    spec = tf.TensorSpec([None, *([None] * (len(model.inputs[0].shape) - 2)), model.inputs[0].shape[-1]], tf.float32)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def run(batch):
        return tf.cast(model(batch, training=False), tf.float32)

    return lambda batch: run(tf.constant(batch, tf.float32)).numpy()

"""Resumable training streams: draw `i` of a sampler depends only on (seed, i)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

class ClassBalancedSampler:
    """Draw `i` picks a class with the given weights, then a patch of that class; it depends only on (seed, i).

    So every batch holds the classes in the configured proportions whatever their frequency in the
    data, and a resumed run sees the same stream from its step index (like PatchSampler).
    """

    def __init__(self, patches: np.ndarray, labels: np.ndarray, weights: list[float], flips: bool, seed: int) -> None:
        self.patches = patches
        self.labels = np.asarray(labels, dtype=np.int32)
        self.members = [np.flatnonzero(self.labels == c) for c in range(len(weights))]
        self.probabilities = np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
        self.flips = flips
        self.seed = seed

    def sample(self, index: int) -> tuple[np.ndarray, np.int32]:
        rng = np.random.default_rng([self.seed, int(index)])
        label = int(rng.choice(len(self.probabilities), p=self.probabilities))
        patch = self.patches[self.members[label][int(rng.integers(len(self.members[label])))]]
        if self.flips:
            patch = np.rot90(patch, int(rng.integers(4)))
            if rng.integers(2):
                patch = patch[:, ::-1]
        return np.ascontiguousarray(patch)[..., None], np.int32(label)

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        size = self.patches.shape[1]

        def load(index):
            patch, label = tf.numpy_function(self.sample, [index], (tf.float32, tf.int32), stateful=False)
            return tf.ensure_shape(patch, (size, size, 1)), tf.ensure_shape(label, ())

        return (tf.data.Dataset.counter(start_index)
                .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))

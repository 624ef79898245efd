"""Random numbers of a train step that a resumed run draws again exactly.

Every random op of a GAN step (latents, DiffAugment, ADA's choices, instance noise, gradient-penalty
points) is stateless, seeded by ([train] seed, step, replica, draw number). Nothing random lives in
op or generator state that a restart would reset, so a run killed at any step and resumed from its
last checkpoint replays the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import tensorflow as tf

MAX_REPLICAS = 1 << 12  # the step and replica share one seed word
MAX_DRAWS = 1 << 16  # random ops per traced step, per replica


class StepRandom:
    """The stateless draws of one step on one replica; the k-th call in the traced step gets seed k."""

    def __init__(self, seed: int, step: tf.Tensor) -> None:
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        self._step_word = tf.cast(step, tf.int64) * MAX_REPLICAS + tf.cast(replica, tf.int64)
        self._seed = int(seed) * MAX_DRAWS
        self._draws = 0

    def seed(self) -> tf.Tensor:
        """A fresh (2,) seed for a stateless op; raises past MAX_DRAWS (the seeds would repeat)."""
        if self._draws >= MAX_DRAWS:
            raise RuntimeError(f"more than {MAX_DRAWS} random draws in one train step")
        self._draws += 1
        return tf.stack([tf.constant(self._seed + self._draws, tf.int64), self._step_word])

    def normal(self, shape, stddev: float | tf.Tensor = 1.0, dtype: tf.DType = tf.float32) -> tf.Tensor:
        return tf.random.stateless_normal(shape, self.seed(), stddev=stddev, dtype=dtype)

    def uniform(self, shape, minval=0, maxval=None, dtype: tf.DType = tf.float32) -> tf.Tensor:
        return tf.random.stateless_uniform(shape, self.seed(), minval=minval, maxval=maxval, dtype=dtype)

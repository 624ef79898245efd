"""Exponential moving average of generator weights, kept in a second model used for eval/inference."""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf


class EMA:
    """shadow ← decay·shadow + (1−decay)·weights after every generator step (cross-replica context)."""

    def __init__(self, model: keras.Model, decay: float, build_copy: Callable[[], keras.Model]) -> None:
        self.model = model
        self.decay = decay
        self.shadow = build_copy()
        self.reset()

    def reset(self) -> None:
        for shadow, weight in zip(self.shadow.weights, self.model.weights):
            shadow.assign(weight)

    def update(self) -> None:
        for shadow, weight in zip(self.shadow.weights, self.model.weights):
            if weight.trainable:
                shadow.assign(self.decay * shadow + (1.0 - self.decay) * tf.cast(weight, shadow.dtype))
            else:  # batch-norm statistics are copied, not averaged
                shadow.assign(weight)

"""One optimisation step, the same for every network of every family (D steps, G steps, pre-training)."""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

Logs = dict[str, tf.Tensor]


def take_step(optimizer: keras.optimizers.Optimizer, variables: list, compute: Callable[[], tuple[tf.Tensor, Logs]]) -> Logs:
    """Minimise `compute()`'s loss over `variables` with `optimizer`; returns `compute()`'s logs.

    Under mixed precision the loss is scaled inside the tape (so the scaling is differentiated) and a
    LossScaleOptimizer unscales the gradients and skips steps with Inf/NaN gradients.
    """
    with tf.GradientTape() as tape:
        loss, logs = compute()
        scaled = optimizer.scale_loss(loss) if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else loss
    gradients = tape.gradient(scaled, variables)
    optimizer.apply_gradients(zip(gradients, variables))
    return logs

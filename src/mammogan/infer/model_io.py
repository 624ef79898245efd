"""Loading a trained generator from a run folder and running it on numpy batches."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..errors import UserError


def generator_path(config: Config) -> Path:
    """The best generator of the run (EMA weights when enabled), else the final one."""
    models = config.train.output_dir / "models"
    for name in ("best", "final"):
        path = models / name / "generator.keras"
        if path.is_file():
            return path
    raise UserError(f"{models}: no trained generator (models/best/generator.keras). Run `1.train` for {config.path} first.")


def load_generator(config: Config) -> keras.Model:
    import mammogan.models  # noqa: F401  (registers the custom layers for deserialisation)

    return keras.models.load_model(generator_path(config), compile=False)


def make_runner(model: keras.Model) -> Callable[[np.ndarray], np.ndarray]:
    """A compiled batch → batch function that accepts any spatial size without retracing per call."""
    spec = tf.TensorSpec([None, *([None] * (len(model.inputs[0].shape) - 2)), model.inputs[0].shape[-1]], tf.float32)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def run(batch):
        return tf.cast(model(batch, training=False), tf.float32)

    return lambda batch: run(tf.constant(batch, tf.float32)).numpy()

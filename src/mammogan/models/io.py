"""Finding and loading the trained generator of a run folder."""

from __future__ import annotations

from pathlib import Path

import keras

from ..config.loader import Config
from ..errors import UserError
from . import layers  # noqa: F401  (registers the custom layers saved generators use)


def generator_path(config: Config) -> Path:
    """The best generator of the run (EMA weights when enabled), else the final one."""
    models = config.train.output_dir / "models"
    for name in ("best", "final"):
        path = models / name / "generator.keras"
        if path.is_file():
            return path
    raise UserError(f"{models}: no trained generator (models/best/generator.keras). Run `1.train` for {config.path} first.")


def load_model(path: Path) -> keras.Model:
    return keras.models.load_model(path, compile=False)


def load_generator(config: Config) -> keras.Model:
    return load_model(generator_path(config))

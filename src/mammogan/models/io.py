"""Finding and loading the trained generator of a run folder."""

from __future__ import annotations

import importlib
from pathlib import Path

import keras
import numpy as np

from .. import catalog
from ..config.loader import Config
from ..errors import UserError
from . import layers  # noqa: F401  (registers the shared custom layers)


def generator_path(config: Config, file_name: str = "generator.keras") -> Path:
    """The best generator of the run (EMA weights when enabled), else the final one; `file_name` for families with
    several (CycleGAN's generator_a_to_b.keras)."""
    models = config.train.output_dir / "models"
    for name in ("best", "final"):
        path = models / name / file_name
        if path.is_file():
            return path
    raise UserError(f"{models}: no trained generator (models/best/{file_name}). Run `1.train` for {config.path} first.")


SNAPSHOT_PREFIX = "step_"


def snapshot_folder(output_dir: Path, step: int) -> Path:
    """Where `[train] snapshot_every` exports the models of `step` (models/step_000500)."""
    return output_dir / "models" / f"{SNAPSHOT_PREFIX}{step:06d}"


def snapshot_folders(config: Config) -> dict[int, Path]:
    """The run's step snapshots by step, oldest first: the budget study's arms in `evaluate`."""
    models = config.train.output_dir / "models"
    folders = {}
    for folder in models.glob(f"{SNAPSHOT_PREFIX}*"):
        digits = folder.name[len(SNAPSHOT_PREFIX):]
        if folder.is_dir() and digits.isdigit():
            folders[int(digits)] = folder
    return dict(sorted(folders.items()))


def _import_generator_modules() -> None:
    """Import every catalogued generator's module, so whatever architecture a saved generator is, its custom layers
    are registered before Keras deserialises it (in a fresh `evaluate`/`infer` process nothing else imported them)."""
    for name in catalog.names("generator"):
        importlib.import_module(catalog.component("generator", name).module)


def load_model(path: Path) -> keras.Model:
    _import_generator_modules()
    return keras.models.load_model(path, compile=False)


def load_generator(config: Config) -> keras.Model:
    return load_model(generator_path(config))


def load_sr_generator(config: Config) -> keras.Model:
    """The run's SR generator, refused when its upscaling factor is not [model] scale.

    The factor comes from the saved network itself (one tiny forward pass), so a config whose scale was
    edited after training cannot silently produce images of the wrong size.
    """
    path = generator_path(config)
    model = load_model(path)
    probe = 8
    built = int(model(np.zeros((1, probe, probe, 1), np.float32), training=False).shape[1]) // probe
    if built != config.model.scale:
        raise config.error("model", "scale", f"the trained generator {path} upscales ×{built} (it was trained with "
                           f"scale = {built}); set scale = {built}, or train a ×{config.model.scale} model")
    return model

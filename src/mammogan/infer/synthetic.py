"""Sampling a trained synthetic-image generator into a dataset folder: `images/` (+ `masks/`) and `manifest.csv`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import keras
import numpy as np

from ..config.loader import Config
from ..core.io import atomic_write_csv
from ..core.logs import get_logger
from ..data.images import write_png
from ..metrics.memorisation import check_against_training, configured_extractor
from ..models.io import generator_path, load_generator
from ..models.sampling import Conditions, sample_images, sample_name

log = get_logger("infer")


def write_synthetic_dataset(config: Config, output_dir: Path, conditions_for: Callable[[Config, keras.Model], Conditions]) -> int:
    """Synthetic images from seeded latents, as a dataset folder with a manifest.

    `conditions_for(config, generator)` (the family's) says how many samples and what else the generator is
    fed: class ids (a `class` column) or masks, written to `masks/` under the image's name with their source
    in the manifest — the `{images,masks}` layout of the prepared splits.

    With `reject_near_copies`, samples the memorisation check flags are not written (a stale file of
    that name is removed); the manifest keeps their row with status `rejected_near_copy`.
    """
    cfg = config
    generator = load_generator(cfg)
    conditions = conditions_for(cfg, generator)
    images = sample_images(generator, conditions.count, cfg.model.latent_dim, cfg.infer.seed,
                           labels=conditions.labels, masks=conditions.masks)
    names = [sample_name(cfg.infer.seed, index) for index in range(len(images))]
    checks = _memorisation(cfg, images, names, output_dir) if cfg.infer.reject_near_copies else {}
    rows = []
    for index, (name, image) in enumerate(zip(names, images)):
        row = {"image": name, "seed": cfg.infer.seed, "index": index, "checkpoint": str(generator_path(cfg)),
               "task": cfg.model.task, **({} if conditions.masks is None else {"mask": name}),
               **(conditions.columns[index] if conditions.columns else {}), **checks.get(name, {})}
        target, mask_target = output_dir / "images" / name, output_dir / "masks" / name
        if row.get("status") == "rejected_near_copy":
            target.unlink(missing_ok=True)
            mask_target.unlink(missing_ok=True)
        else:
            write_png(target, np.round(image * 255).astype(np.uint8))
            if conditions.masks is not None:  # the segmentation label of the image, 0/255 like prepared masks
                write_png(mask_target, (conditions.masks[index] * 255).astype(np.uint8))
        rows.append(row)
    atomic_write_csv(output_dir / "manifest.csv", rows)
    rejected = sum(row.get("status") == "rejected_near_copy" for row in rows)
    log.info("Sampled %d synthetic images into %s%s", len(rows) - rejected, output_dir / "images",
             f" ({rejected} near-copies of training patches left out)" if checks else "")
    return 0


def _memorisation(config: Config, images: np.ndarray, names: list[str], output_dir: Path) -> dict[str, dict[str, object]]:
    """Manifest columns per sample from the memorisation check (report files go beside the manifest)."""
    report = check_against_training(config, images, names, output_dir, "[infer] reject_near_copies", configured_extractor(config))
    result = report.synthetic
    return {name: {"nearest_ssim": float(result.ssim.similarity[i]), "nearest_cosine": float(result.cosine.similarity[i]),
                   "status": "rejected_near_copy" if result.near_copy[i] else "written"}
            for i, name in enumerate(names)}

"""Lesion masks to condition a mask-to-image GAN on: real ones, or plausible shapes drawn from a prior.

The prior draws either a real training mask moved to a new pose (flip, 90° rotation, scale,
translation) or a smooth random blob (an ellipse whose radius is perturbed by a few low harmonics,
mass-like). Draw `i` depends only on (seed, i), and every mask records where it came from, so a
synthetic segmentation set can be regenerated and audited from its manifest.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..config.loader import Config
from ..core.logs import get_logger
from .patch_dataset import load_masks
from .samplers import GeneratorDraws, random_orientation

log = get_logger("data")


def random_blob(size: int, rng: np.random.Generator) -> np.ndarray:
    """A filled star-shaped blob, uint8 {0, 1}: radius r0·(1 + Σ a_k cos(kθ + φ_k)), k = 2..5, random aspect and pose."""
    theta = np.linspace(0.0, 2.0 * np.pi, 96, endpoint=False)
    radius = rng.uniform(0.12, 0.35) * size * np.ones_like(theta)
    for k in range(2, 6):
        radius *= 1.0 + rng.uniform(0.0, 0.25 / k) * np.cos(k * theta + rng.uniform(0.0, 2.0 * np.pi))
    aspect, angle = rng.uniform(0.55, 1.0), rng.uniform(0.0, np.pi)
    x, y = radius * np.cos(theta), aspect * radius * np.sin(theta)
    centre = size / 2.0 + rng.uniform(-0.15, 0.15, 2) * size
    points = np.stack([x * np.cos(angle) - y * np.sin(angle) + centre[0], x * np.sin(angle) + y * np.cos(angle) + centre[1]], axis=1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask


def moved_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A binary mask in a random new pose: 90° rotation, flip, scale 0.75-1.25 and shift up to 1/8 of the side.

    Nearest-neighbour warping keeps it binary; a pose that pushes the lesion out of the patch keeps the unscaled, unshifted one.
    """
    size = mask.shape[0]
    (turned,) = random_orientation(GeneratorDraws(rng), mask)
    turned = np.ascontiguousarray(turned).astype(np.uint8)
    warp = cv2.getRotationMatrix2D(((size - 1) / 2.0, (size - 1) / 2.0), 0.0, float(rng.uniform(0.75, 1.25)))
    warp[:, 2] += rng.uniform(-0.125, 0.125, 2) * size
    moved = cv2.warpAffine(turned, warp, (size, size), flags=cv2.INTER_NEAREST, borderValue=0)
    return moved if moved.any() else turned


class MaskPrior:
    """Draw `i` is a moved real mask with probability `real_fraction` (when non-empty real masks are given), else a blob.

    `sample(i)` returns (uint8 {0, 1} mask, source): "prior:real:<file name>" or "prior:blob".
    """

    def __init__(self, size: int, seed: int, real_masks: np.ndarray | None = None, real_names: list[str] | None = None,
                 real_fraction: float = 0.5) -> None:
        self.size = size
        self.seed = seed
        # Empty masks (healthy patches) carry no shape.
        keep = [i for i in range(len(real_masks)) if real_masks[i].any()] if real_masks is not None else []
        self.real = [(real_masks[i] > 0).astype(np.uint8) for i in keep]
        self.names = [real_names[i] for i in keep] if real_names is not None else [str(i) for i in keep]
        self.real_fraction = real_fraction if self.real else 0.0

    def sample(self, index: int) -> tuple[np.ndarray, str]:
        rng = np.random.default_rng([self.seed, int(index)])
        if rng.random() < self.real_fraction:
            pick = int(rng.integers(len(self.real)))
            return moved_mask(self.real[pick], rng), f"prior:real:{self.names[pick]}"
        return random_blob(self.size, rng), "prior:blob"

    def draw(self, count: int) -> tuple[np.ndarray, list[str]]:
        """Masks 0..count-1 as float32 (count, size, size) in {0, 1}, and their sources."""
        drawn = [self.sample(index) for index in range(count)]
        return np.stack([mask for mask, _ in drawn]).astype(np.float32), [source for _, source in drawn]


def inference_masks(config: Config, count: int) -> tuple[np.ndarray, list[str]]:
    """The `count` masks `infer` conditions a mask-to-image generator on, and each one's source.

    `[infer] mask_source = "real"`: the masks of `[infer] mask_dir` (default [dataset] train_dir) in name
    order, cycled ("real:<file name>"); `"prior"`: MaskPrior draws seeded by `[infer] seed`, moving the
    training masks of [dataset] train_dir.
    """
    cfg = config
    size = cfg.model.image_size
    if cfg.infer.mask_source == "real":
        folder: Path = cfg.infer.mask_dir or cfg.need("dataset", "train_dir", '[infer] mask_source = "real" (or set [infer] mask_dir)')
        masks, names = load_masks(folder, size)
        picks = np.arange(count) % len(masks)
        return masks[picks], [f"real:{names[i]}" for i in picks]
    real_masks, real_names = None, None
    if cfg.infer.prior_real_fraction > 0 and cfg.dataset.train_dir is not None:
        real_masks, real_names = load_masks(cfg.dataset.train_dir, size)
    prior = MaskPrior(size, cfg.infer.seed, real_masks, real_names, cfg.infer.prior_real_fraction)
    if cfg.infer.prior_real_fraction > 0 and not prior.real:
        log.warning("Mask prior: no non-empty training masks in [dataset] train_dir; every mask is a random blob.")
    return prior.draw(count)

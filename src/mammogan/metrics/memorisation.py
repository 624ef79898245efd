"""Memorisation / privacy check: how close is every synthetic image to its nearest training image?

A synthetic patch that reproduces a patient's patch defeats the purpose of synthetic data. For each
synthetic image the nearest training image is found under two similarities: SSIM (pixel structure)
and the cosine of standardised feature vectors from a named extractor (content). Both searches cover
the 8 flips and 90° rotations of every training image, because GAN training shows the generator each
patch in those orientations (`augment_flips`), so a memorised patch can come back flipped. A sample
is a near-copy when either similarity reaches its threshold. Copies shifted by a few pixels score
high but below a copy's ~1: the pair PNGs are there to be looked at.

Held-out real images (other patients), when given, go through the same search: their similarities
show what "not a copy" looks like for this data and extractor (mammogram patches of smooth tissue
resemble each other: SSIM 0.8+ between patients is common), and a flagged held-out image means the
thresholds are too low. The defaults (SSIM 0.95, cosine 0.998) sit above the bundled sample's
held-out maxima (SSIM 0.865, cosine 0.996 with `random_cnn`) and below a copy's ~1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..data.images import write_png
from ..data.patch_dataset import ORIENTATIONS, load_patches, orient, patch_names
from ..metrics.features import FeatureExtractor
from ..metrics.full_reference import SSIM_FILTER_SIZE
from ..registry import FEATURE_EXTRACTORS
from ..core.io import atomic_write_csv
from ..core.logs import get_logger

log = get_logger("evaluate")
PAIRS_FOLDER = "memorisation_pairs"
PAIR_PANEL = 128  # minimum displayed side of each image in a pair PNG (nearest-neighbour upscaling)
SSIM_BATCH = 2048  # candidates per filtered batch (bounds memory)
SSIM_SIGMA = 1.5  # tf.image.ssim's Gaussian window




@dataclass(frozen=True)
class Nearest:
    """For each query image, its most similar training image under one similarity."""

    similarity: np.ndarray  # (N,)
    index: np.ndarray  # (N,) into the training set
    orientation: np.ndarray  # (N,) into ORIENTATIONS: the training image was seen this way


def _best(scores: np.ndarray) -> Nearest:
    """scores (N, 8, M) → the maximum over orientations and training images per query."""
    flat = scores.reshape(len(scores), -1)
    best = flat.argmax(axis=1)
    orientation, index = np.unravel_index(best, scores.shape[1:])
    return Nearest(flat[np.arange(len(flat)), best].astype(np.float64), index, orientation)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _window_matrix(size: int) -> tf.Tensor:
    """(size - 10, size): tf.image.ssim's 1-D Gaussian (11 taps, σ 1.5) at every VALID position, as a matrix."""
    taps = np.arange(SSIM_FILTER_SIZE, dtype=np.float64) - (SSIM_FILTER_SIZE - 1) / 2
    kernel = np.exp(-0.5 * taps**2 / SSIM_SIGMA**2)
    matrix = np.zeros((size - SSIM_FILTER_SIZE + 1, size), np.float32)
    for row in range(matrix.shape[0]):
        matrix[row, row : row + SSIM_FILTER_SIZE] = kernel / kernel.sum()
    return tf.constant(matrix)


def ssim_matrix(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """SSIM of every (query, candidate) pair, (N, H, W) × (C, H, W) in [0, 1] → (N, C).

    Equal to the registered `ssim` metric (tf.image.ssim, max_val 1) pair by pair up to float32
    rounding, but the Gaussian window is two matrix products and the local means and energies of each
    image are filtered once, leaving one filtered product per pair: ~0.1 ms per 64² pair on two CPU
    cores instead of ~1 ms, which makes the exhaustive search affordable.
    """
    if min(queries.shape[1:]) < SSIM_FILTER_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_FILTER_SIZE}x{SSIM_FILTER_SIZE} pixels, got {queries.shape[1:]}")
    rows, columns = _window_matrix(queries.shape[1]), _window_matrix(queries.shape[2])

    def window(images: tf.Tensor) -> tf.Tensor:  # (B, H, W) → local Gaussian means (B, H - 10, W - 10)
        return tf.matmul(tf.matmul(rows[None], images), columns[None], transpose_b=True)

    c1, c2 = 0.01**2, 0.03**2
    candidates_t = tf.constant(candidates, tf.float32)
    mean_c, energy_c = window(candidates_t), window(tf.square(candidates_t))
    scores = np.empty((len(queries), len(candidates)), np.float32)
    for row, query in enumerate(queries):
        query_t = tf.constant(query[None], tf.float32)
        mean_q, energy_q = window(query_t), window(tf.square(query_t))
        for start in range(0, len(candidates), SSIM_BATCH):
            part = slice(start, start + SSIM_BATCH)
            cross = window(candidates_t[part] * query_t)
            luminance = (2 * mean_q * mean_c[part] + c1) / (tf.square(mean_q) + tf.square(mean_c[part]) + c1)
            contrast_structure = (2 * (cross - mean_q * mean_c[part]) + c2) / (
                energy_q + energy_c[part] - tf.square(mean_q) - tf.square(mean_c[part]) + c2)
            scores[row, part] = tf.reduce_mean(luminance * contrast_structure, axis=(1, 2)).numpy()
    return scores


def nearest_by_ssim(queries: np.ndarray, training: np.ndarray) -> Nearest:
    """Exhaustive SSIM search; `queries` (N, H, W) and `training` (M, H, W) in [0, 1]."""
    candidates = np.concatenate([orient(training, k) for k in range(len(ORIENTATIONS))])
    return _best(ssim_matrix(queries, candidates).reshape(len(queries), len(ORIENTATIONS), len(training)))


def nearest_by_cosine(queries: np.ndarray, training: np.ndarray, extractor: FeatureExtractor) -> Nearest:
    """The nearest training image (any orientation) by cosine similarity of standardised `extractor` features.

    Features are standardised with the per-dimension mean and std of the training features, so the
    directions every mammogram patch shares (which put raw cosines of unrelated patches above 0.99)
    do not dominate.
    """
    training_features = np.stack([extractor.features(orient(training, k)[..., None]) for k in range(len(ORIENTATIONS))])
    flat = training_features.reshape(-1, training_features.shape[-1])
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    std = np.where(std > 1e-6 * std.max(), std, 1.0)  # dimensions constant over the training set stay unscaled
    query_features = _unit((extractor.features(queries[..., None]) - mean) / std)
    return _best(np.einsum("nd,omd->nom", query_features, _unit((training_features - mean) / std)))


@dataclass(frozen=True)
class SetResult:
    """The nearest-training search for one set of images (synthetic, or held-out real)."""

    label: str
    names: list[str]
    images: np.ndarray
    ssim: Nearest
    cosine: Nearest
    near_copy: np.ndarray  # (N,) bool


@dataclass(frozen=True)
class MemorisationReport:
    extractor: str
    ssim_threshold: float
    cosine_threshold: float
    synthetic: SetResult
    held_out: SetResult | None

    @property
    def near_copy(self) -> np.ndarray:
        """Which synthetic images are near-copies of a training image."""
        return self.synthetic.near_copy


def _search(label: str, images: np.ndarray, names: Sequence[str], training: np.ndarray, extractor: FeatureExtractor,
            ssim_threshold: float, cosine_threshold: float) -> SetResult:
    by_ssim = nearest_by_ssim(images, training)
    by_cosine = nearest_by_cosine(images, training, extractor)
    near_copy = (by_ssim.similarity >= ssim_threshold) | (by_cosine.similarity >= cosine_threshold)
    return SetResult(label, list(names), images, by_ssim, by_cosine, near_copy)


def check_memorisation(
    synthetic: np.ndarray,
    synthetic_names: Sequence[str],
    training: np.ndarray,
    training_names: Sequence[str],
    extractor: FeatureExtractor,
    *,
    ssim_threshold: float,
    cosine_threshold: float,
    output_dir: Path,
    pairs: int,
    held_out: tuple[np.ndarray, Sequence[str]] | None = None,
) -> MemorisationReport:
    """Search, flag, and write `memorisation.csv`, `memorisation_summary.csv` and the `pairs` closest pairs.

    Images are (N, H, W) floats in [0, 1], all of one size. `held_out` (images, names): real images of
    other patients, searched the same way as a reference; they never affect which synthetic images are flagged.
    """
    if len(synthetic) != len(synthetic_names) or len(training) != len(training_names):
        raise ValueError("every synthetic and training image needs exactly one name")
    thresholds = dict(ssim_threshold=ssim_threshold, cosine_threshold=cosine_threshold)
    result = _search("synthetic", synthetic, synthetic_names, training, extractor, **thresholds)
    reference = None
    if held_out is not None:
        reference = _search("held_out_real", *held_out, training, extractor, **thresholds)
    report = MemorisationReport(extractor.name, ssim_threshold, cosine_threshold, result, reference)
    _write_tables(report, list(training_names), output_dir)
    _write_pairs(result, training, list(training_names), output_dir / PAIRS_FOLDER, pairs)
    _log_summary(report, output_dir)
    return report


def _sets(report: MemorisationReport) -> list[SetResult]:
    return [report.synthetic] + ([report.held_out] if report.held_out is not None else [])


def _write_tables(report: MemorisationReport, training_names: list[str], output_dir: Path) -> None:
    per_image, summary = [], []
    for result in _sets(report):
        for i, name in enumerate(result.names):
            per_image.append({
                "set": result.label, "image": name,
                "ssim": float(result.ssim.similarity[i]), "ssim_nearest": training_names[result.ssim.index[i]],
                "ssim_orientation": ORIENTATIONS[result.ssim.orientation[i]],
                "cosine": float(result.cosine.similarity[i]), "cosine_nearest": training_names[result.cosine.index[i]],
                "cosine_orientation": ORIENTATIONS[result.cosine.orientation[i]],
                "near_copy": bool(result.near_copy[i]),
            })
        row: dict[str, object] = {"set": result.label, "extractor": report.extractor, "images": len(result.names),
                                  "near_copies": int(result.near_copy.sum()), "ssim_threshold": report.ssim_threshold,
                                  "cosine_threshold": report.cosine_threshold}
        for measure, nearest in (("ssim", result.ssim), ("cosine", result.cosine)):
            values = nearest.similarity
            row.update({f"{measure}_median": float(np.median(values)), f"{measure}_p95": float(np.percentile(values, 95)),
                        f"{measure}_max": float(values.max())})
        summary.append(row)
    atomic_write_csv(output_dir / "memorisation.csv", per_image)
    atomic_write_csv(output_dir / "memorisation_summary.csv", summary)


def _panel(image: np.ndarray) -> np.ndarray:
    factor = max(1, math.ceil(PAIR_PANEL / image.shape[0]))
    return np.kron(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), np.ones((factor, factor), np.uint8))


def _write_pairs(result: SetResult, training: np.ndarray, training_names: list[str], folder: Path, count: int) -> None:
    """Side by side: synthetic | nearest by SSIM | nearest by cosine (training images in the matched orientation).

    The `count` pairs shown are the near-copies first, then the highest SSIM.
    """
    if folder.is_dir():
        for old in folder.glob("*.png"):
            old.unlink()
    ranking = np.lexsort((-result.ssim.similarity, ~result.near_copy))[:count]
    for rank, i in enumerate(ranking, 1):
        panels = [result.images[i]] + [orient(training[nearest.index[i]][None], int(nearest.orientation[i]))[0]
                                       for nearest in (result.ssim, result.cosine)]
        scaled = [_panel(panel) for panel in panels]
        gap = np.full((scaled[0].shape[0], 4), 255, np.uint8)
        row = np.hstack([scaled[0], gap, scaled[1], gap, scaled[2]])
        stem = Path(result.names[i]).stem
        nearest_stem = Path(training_names[result.ssim.index[i]]).stem
        write_png(folder / f"{rank:02d}_{stem}__{nearest_stem}.png", row)


def _log_summary(report: MemorisationReport, output_dir: Path) -> None:
    log.info("Memorisation check (%s features; near-copy: SSIM ≥ %g or cosine ≥ %g) → %s",
             report.extractor, report.ssim_threshold, report.cosine_threshold, output_dir / "memorisation.csv")
    for result in _sets(report):
        log.info("  %-14s %3d of %3d near-copies   nearest-training SSIM median %.3f max %.3f   cosine median %.4f max %.4f",
                 result.label, int(result.near_copy.sum()), len(result.names), np.median(result.ssim.similarity),
                 result.ssim.similarity.max(), np.median(result.cosine.similarity), result.cosine.similarity.max())
    if report.held_out is not None and report.held_out.near_copy.any():
        log.warning("  %d held-out real images (other patients) are flagged too: the thresholds are too low for this data.",
                    int(report.held_out.near_copy.sum()))


def configured_extractor(config: Config) -> FeatureExtractor:
    """The feature extractor named by [eval] feature_extractor (shared by evaluation and this check)."""
    factory = FEATURE_EXTRACTORS.get(config.eval.feature_extractor, f"{config.path}: [eval] feature_extractor")
    return factory(config.eval.extractor_weights, seed=config.train.seed)



def check_against_training(config: Config, synthetic: np.ndarray, synthetic_names: Sequence[str], output_dir: Path,
                           purpose: str, extractor: FeatureExtractor,
                           held_out: tuple[np.ndarray, Sequence[str]] | None = None) -> MemorisationReport:
    """The check against [dataset] train_dir with the [eval] thresholds, as `evaluate` and `infer` run it."""
    train_dir = config.need("dataset", "train_dir", purpose)
    training = load_patches(train_dir, config.model.image_size)
    return check_memorisation(synthetic, synthetic_names, training, patch_names(train_dir), extractor,
                              ssim_threshold=config.eval.near_copy_ssim, cosine_threshold=config.eval.near_copy_cosine,
                              output_dir=output_dir, pairs=config.eval.comparison_crops, held_out=held_out)

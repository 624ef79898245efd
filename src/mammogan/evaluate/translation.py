"""CycleGAN evaluation: does A → B look like B, does it keep A's structure, and does density move the right way?

Fixed crops of the test split's two domains go through the trained translators and, as baselines,
the step-0 translators (models/initial) and no translation at all. Per direction:
- distribution: the synthetic-image evaluation of the translations against the real crops of the target
  domain (KID, FID, precision/recall, ... beside Gaussian noise and real training crops of the target);
- structure kept: the `[eval] metrics` (e.g. PSNR, SSIM, MS-GMSD, MDSI, HaarPSI) between each input and its
  translation, and between the input and its cycle reconstruction;
- density: the fraction of pixels above a dense-tissue grey level (`[cyclegan] dense_threshold`, else the
  median of all evaluated real crops), and how much of the gap from source to target it covers.
Everything lands in `evaluation.csv` (one row per direction and arm) and a comparison sheet per direction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from ..config.loader import Config
from ..core.io import atomic_write_csv
from ..core.logs import get_logger
from ..data.domains import DomainRule, load_domains
from ..data.samplers import UnpairedCropSampler
from ..models.cyclegan import DIRECTIONS, translate, translator_file
from ..models.io import generator_path, load_model
from ..models.sampling import sample_name
from ..registry import METRICS
from ..visual.tiles import translation_tile
from .synthetic import SyntheticArms, score_synthetic

log = get_logger("evaluate")

def dense_fraction(images: np.ndarray, threshold: float) -> float:
    """Mean fraction of pixels brighter than `threshold` (dense, fibroglandular tissue is bright on a mammogram)."""
    return float(np.mean(images > threshold))


def structure_scores(metrics: list[str], reference: np.ndarray, other: np.ndarray, suffix: str) -> dict[str, float]:
    """Mean of each full-reference metric between two (N, H, W) sets in [0, 1], as `<metric>_<suffix>` columns."""
    a = tf.constant(reference[..., None], tf.float32)
    b = tf.constant(other[..., None], tf.float32)
    return {f"{name}_{suffix}": float(tf.reduce_mean(METRICS.get(name)(a, b, 1.0))) for name in metrics}


def _crops(config: Config, split_dir: Path, rule: DomainRule, count: int, where: str) -> dict[str, np.ndarray]:
    """`count` fixed crops of [model] image_size per domain of a split (the same for every arm and run)."""
    cfg = config
    domains = load_domains(split_dir, rule, cfg.dataset.data_range, cfg.model.image_size, where)
    sampler = UnpairedCropSampler(domains["A"], domains["B"], cfg.model.image_size, False, cfg.infer.seed,
                                  cfg.dataset.min_crop_mean)
    return {domain: sampler.fixed(index, count, cfg.infer.seed) for index, domain in enumerate("AB")}


def _translator_arms(config: Config) -> dict[str, Path]:
    """The run's translator folders: "generator" (best, else final) and "step0_generator" (models/initial) when saved."""
    folders = {"generator": generator_path(config, translator_file("a_to_b")).parent}
    initial = config.train.output_dir / "models" / "initial"
    if (initial / translator_file("a_to_b")).is_file():
        folders["step0_generator"] = initial
    return folders


def evaluate_translation(config: Config, output_dir: Path, rule: DomainRule) -> int:
    cfg = config
    test_dir = cfg.dataset.test_dir or cfg.need("dataset", "valid_dir", "evaluating CycleGAN (or set test_dir)")
    count = cfg.eval.num_samples
    crops = _crops(cfg, test_dir, rule, count, "[dataset] test_dir")
    train_crops = _crops(cfg, cfg.dataset.train_dir, rule, count, "[dataset] train_dir") if cfg.dataset.train_dir else None
    threshold = cfg.cyclegan.dense_threshold or float(np.median(np.concatenate([crops["A"], crops["B"]])))
    folders = _translator_arms(cfg)
    models = {arm: {d: load_model(folder / translator_file(d)) for d in DIRECTIONS} for arm, folder in folders.items()}
    table = []
    for direction, (source, target) in DIRECTIONS.items():
        backward = "b_to_a" if direction == "a_to_b" else "a_to_b"
        translated = {arm: translate(nets[direction], crops[source]) for arm, nets in models.items()}
        cycles = {arm: translate(models[arm][backward], images) for arm, images in translated.items()}
        untranslated = f"untranslated_{source.lower()}"
        arms = SyntheticArms({**translated, untranslated: crops[source]}, [sample_name(cfg.infer.seed, i) for i in range(count)],
                             crops[target], [f"{target}_{i:05d}" for i in range(count)],
                             train_crops[target] if train_crops is not None else None,
                             skip_memorisation="translations keep their input's structure by design")
        rows = score_synthetic(cfg, output_dir / direction, arms)
        source_density, target_density = dense_fraction(crops[source], threshold), dense_fraction(crops[target], threshold)
        images_of = {**arms.generated, **({"real_train": arms.real_train} if arms.real_train is not None else {})}
        for row in rows:
            arm = str(row["arm"])
            entry: dict[str, object] = {"direction": direction, **row, "dense_threshold": threshold,
                                        "source_dense_fraction": source_density, "target_dense_fraction": target_density}
            density = dense_fraction(images_of[arm], threshold) if arm in images_of else None
            entry["dense_fraction"] = density if density is not None else ""
            gap = target_density - source_density
            entry["density_shift"] = (density - source_density) / gap if density is not None and abs(gap) > 1e-6 else ""
            for suffix, pairs in (("translation", translated), ("cycle", cycles)):
                scores = structure_scores(cfg.eval.metrics, crops[source], pairs[arm], suffix) if arm in pairs else {}
                entry.update({f"{name}_{suffix}": scores.get(f"{name}_{suffix}", "") for name in cfg.eval.metrics})
            table.append(entry)
        if cfg.eval.comparison_crops:
            shown = slice(0, cfg.eval.comparison_crops)
            sheet = [(source, crops[source][shown])]
            for arm in translated:
                sheet += [(f"{arm}: {source} to {target}", translated[arm][shown]), (f"{arm}: back to {source}", cycles[arm][shown])]
            translation_tile(output_dir / direction / "comparison.png", f"{test_dir.name} split, {direction}", sheet, {})
        _log_direction(direction, table[-len(rows):], cfg.eval.metrics)
    atomic_write_csv(output_dir / "evaluation.csv", table)
    log.info("CycleGAN evaluation (%d crops per domain of %s, dense above %.3f) → %s", count, test_dir, threshold,
             output_dir / "evaluation.csv")
    return 0


def _log_direction(direction: str, rows: list[dict[str, object]], metrics: list[str]) -> None:
    log.info("%s (source dense fraction %.3f, target %.3f):", direction, rows[0]["source_dense_fraction"],
             rows[0]["target_dense_fraction"])
    for row in rows:
        structure = "  ".join(f"{name} {row[f'{name}_translation']:.3f}/{row[f'{name}_cycle']:.3f}" for name in metrics
                              if row[f"{name}_translation"] != "")
        density = f"dense {row['dense_fraction']:.3f}" if row["dense_fraction"] != "" else ""
        log.info("  %-18s KID %.4f  FID %.2f  %s  %s", row["arm"], row["kid_mean"], row["fid"], density,
                 f"(translation/cycle) {structure}" if structure else "")

"""The downstream-utility benchmark: does traditional augmentation or GAN data help a classifier trained on it?

Four arms train the same lesion-vs-normal patch classifier from scratch on one patient-level split:
real only; real + traditional augmentation (the offline `mammogan augment` output of the training
patches); real + synthetic (samples of a GAN `infer` run, `synthetic_ratio` per real patch); and all
three combined. Each arm runs once per seed; a seed fixes the initial weights and the batch order,
so the per-seed differences to real only are paired. Both classes weigh the same in the loss (training
and validation); the weights of the epoch with the lowest real validation loss are scored on the real
test split, which no arm ever trains on.

Written to [train] output_dir: `utility_runs.csv` (one row per arm and seed), `utility.csv` (mean ±
std per arm, and the paired differences to real only), `utility.png` (bars with std error bars),
`training_sets.csv` (every training image of every arm with its origin, file and source patch) and
`models/<arm>_seed<seed>.keras` (the real-only ones can serve as the `domain` feature extractor).
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import numpy as np
from scipy.stats import ttest_1samp

from ..config.loader import Config, start_output_folder
from ..core.io import atomic_path, atomic_write_csv, atomic_write_with
from ..core.logs import get_logger
from ..data.labelled_patches import (CLASSES, ORIGINS, PatchSet, augmented_patches, check_disjoint, labelled_splits,
                                     synthetic_patches)
from ..errors import DataError, UserError
from ..metrics.classification import classification_scores
from ..registry import FAMILIES
from ..train.classifier import lesion_probabilities, train_classifier
from .base import Study

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

log = get_logger("utility")
ARMS: dict[str, tuple[str, ...]] = {
    "real_only": ("real",),
    "real_traditional": ("real", "augmented"),
    "real_synthetic": ("real", "synthetic"),
    "combined": ORIGINS,
}
METRICS = ("accuracy", "auc", "f1", "recall_lesion", "recall_normal")
COUNTS = ("train_real", "train_augmented", "train_synthetic", "train_lesion", "train_normal", "test_images")
RUNS_CSV = "utility_runs.csv"


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (NaN for a single value), rounded to 1e-9 so that equal
    differences of fractions like 5/6 - 4/6 and 11/12 - 9/12 show a spread of 0, not 6e-17."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else float("nan")
    return round(float(array.mean()), 9), round(std, 9)


@FAMILIES.register("utility")
class UtilityStudy(Study):
    """`mammogan train` runs it (`run`), `mammogan evaluate` re-summarises the finished runs (`summarise`)."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.output_dir: Path = config.train.output_dir

    def _start(self) -> None:
        start_output_folder(self.config, "train", "utility.log")

    def _data(self) -> tuple[dict[str, PatchSet], PatchSet, PatchSet]:
        """Training set per arm, and the real validation and test splits (checked disjoint from every arm)."""
        cfg = self.config
        size = cfg.model.image_size
        train, valid, test = labelled_splits(cfg, "the utility benchmark")
        augmented = augmented_patches(cfg.need("utility", "augmented_dir", "the real_traditional and combined arms"), train, size)
        synthetic_count = int(round(cfg.utility.synthetic_ratio * len(train.labels)))
        synthetic = synthetic_patches(cfg, cfg.need("utility", "synthetic_dir", "the real_synthetic and combined arms"),
                                      synthetic_count, size, list(valid.sources + test.sources))
        parts = {"real": train, "augmented": augmented, "synthetic": synthetic}
        arms = {}
        for arm, origins in ARMS.items():
            arms[arm] = parts[origins[0]]
            for origin in origins[1:]:
                arms[arm] = arms[arm] + parts[origin]
        check_disjoint(arms["combined"], valid + test)
        atomic_write_csv(self.output_dir / "training_sets.csv", [
            {"arm": arm, "origin": origin, "image": str(path), "source": source, "label": CLASSES[label]}
            for arm, patches in arms.items()
            for origin, path, source, label in zip(patches.origins, patches.paths, patches.sources, patches.labels)])
        return arms, valid, test

    def _train_one(self, arm: str, seed: int, train: PatchSet, valid: PatchSet, test: PatchSet) -> dict[str, object]:
        model, best_epoch = train_classifier(self.config, seed, train, valid)
        atomic_write_with(self.output_dir / "models" / f"{arm}_seed{seed}.keras", model.save)
        scores = classification_scores(test.labels, lesion_probabilities(model, test.images))
        counts = np.bincount(train.labels, minlength=len(CLASSES))
        log.info("  %-16s seed %-4d %4d real %4d augmented %4d synthetic  best epoch %3d  accuracy %.3f  AUC %.3f  F1 %.3f",
                 arm, seed, train.count("real"), train.count("augmented"), train.count("synthetic"), best_epoch,
                 scores["accuracy"], scores["auc"], scores["f1"])
        return {"arm": arm, "seed": seed, "train_real": train.count("real"), "train_augmented": train.count("augmented"),
                "train_synthetic": train.count("synthetic"), "train_lesion": int(counts[1]), "train_normal": int(counts[0]),
                "test_images": len(test.labels), "best_epoch": best_epoch, **scores}

    def run(self) -> int:
        cfg = self.config
        self._start()
        arms, valid, test = self._data()
        log.info("Utility benchmark: %d arms × %d seeds, %s classifier, %d real test patches → %s",
                 len(arms), len(cfg.utility.seeds), cfg.utility.classifier, len(test.labels), self.output_dir)
        runs = []
        for seed in cfg.utility.seeds:
            for arm, train in arms.items():
                runs.append(self._train_one(arm, seed, train, valid, test))
                atomic_write_csv(self.output_dir / RUNS_CSV, runs, digits=17)  # exact: `evaluate` re-reads them
        return self.summarise()

    def summarise(self) -> int:
        """utility.csv and utility.png from the finished runs in utility_runs.csv."""
        self._start()
        path = self.output_dir / RUNS_CSV
        if not path.is_file():
            raise UserError(f"{path}: no finished runs; run `1.train` for {self.config.path} first.")
        with path.open(newline="", encoding="utf-8") as handle:
            runs = list(csv.DictReader(handle))
        if not runs:
            raise DataError(f"{path}: no runs recorded.")
        summary = _summary(runs)
        atomic_write_csv(self.output_dir / "utility.csv", summary)
        _plot(summary, self.output_dir / "utility.png", len({run["seed"] for run in runs}))
        _log_table(summary, self.output_dir)
        return 0


def _paired_p_value(differences: list[float]) -> float:
    """Two-sided paired t-test of the per-seed differences against 0 (NaN below 2 seeds or with no spread:
    with 3 seeds only a large, consistent difference reaches p < 0.05)."""
    if len(differences) < 2 or np.std(differences) == 0:
        return float("nan")
    return float(ttest_1samp(differences, 0.0).pvalue)


def _summary(runs: list[dict[str, str]]) -> list[dict[str, object]]:
    """Per arm: training counts, mean ± std of each metric, and the paired per-seed difference to real_only."""
    baseline = {run["seed"]: run for run in runs if run["arm"] == "real_only"}
    rows = []
    for arm in [a for a in ARMS if any(run["arm"] == a for run in runs)]:
        own = [run for run in runs if run["arm"] == arm]
        row: dict[str, object] = {"arm": arm, "runs": len(own), **{c: int(own[0][c]) for c in COUNTS}}
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"] = _mean_std([float(run[metric]) for run in own])
        for metric in METRICS:
            paired = [float(run[metric]) - float(baseline[run["seed"]][metric]) for run in own if run["seed"] in baseline]
            mean, std = _mean_std(paired) if arm != "real_only" and paired else (float("nan"), float("nan"))
            row[f"{metric}_vs_real_only_mean"], row[f"{metric}_vs_real_only_std"] = mean, std
            row[f"{metric}_vs_real_only_p"] = _paired_p_value(paired) if arm != "real_only" else float("nan")
        rows.append(row)
    return rows


def _plot(summary: list[dict[str, object]], target: Path, seeds: int) -> None:
    figure, axis = plt.subplots(figsize=(9, 5))
    width = 0.8 / len(summary)
    positions = np.arange(len(METRICS))
    for index, row in enumerate(summary):
        means = [float(row[f"{m}_mean"]) for m in METRICS]
        errors = np.nan_to_num([float(row[f"{m}_std"]) for m in METRICS])
        axis.bar(positions + (index - (len(summary) - 1) / 2) * width, means, width, yerr=errors, capsize=3,
                 label=f"{row['arm']} ({row['train_real']} real + {row['train_augmented']} aug + {row['train_synthetic']} syn)")
    axis.set_xticks(positions, [m.replace("_", " ") for m in METRICS])
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("score on real test patches")
    axis.set_title(f"Lesion vs normal patch classifier: mean ± std over {seeds} seed(s), "
                   f"{summary[0]['test_images']} real test patches", fontsize=10)
    axis.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_path(target) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)


def _log_table(summary: list[dict[str, object]], output_dir: Path) -> None:
    log.info("Downstream utility on %s real test patches (mean ± std over seeds; Δ = paired difference to real_only) → %s",
             summary[0]["test_images"], output_dir / "utility.csv")
    log.info("  %-16s %14s  %s", "arm", "real/aug/syn", "  ".join(f"{m:>19s}" for m in METRICS))
    for row in summary:
        counts = f"{row['train_real']}/{row['train_augmented']}/{row['train_synthetic']}"
        log.info("  %-16s %14s  %s", row["arm"], counts,
                 "  ".join(f"{row[f'{m}_mean']:>9.3f} ± {row[f'{m}_std']:<7.3f}" for m in METRICS))
        if row["arm"] != "real_only":
            log.info("  %-16s %14s  %s", "", "Δ", "  ".join(
                f"{row[f'{m}_vs_real_only_mean']:>+9.3f} ± {row[f'{m}_vs_real_only_std']:<7.3f}" for m in METRICS))
            log.info("  %-16s %14s  %s", "", "paired t: p", "  ".join(f"{row[f'{m}_vs_real_only_p']:>19.3f}" for m in METRICS))

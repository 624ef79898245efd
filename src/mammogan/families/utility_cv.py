"""The cross-validated utility study: does traditional augmentation or GAN data help a lesion classifier on
real patients it never saw?

The patients of a prepared patch folder are split into `folds` stratified folds. In fold f the classifier
trains on the other folds' patients less a validation slice (which picks its epoch), and is tested on fold f.
Everything added to its training data is made from those training patients only: the traditional arm augments
their patches with a `mammogan augment` recipe, and every listed GAN experiment is trained again on them (once
per class when it is unconditional, once when it is conditional) and sampled per class. `provenance.csv` records,
for every synthetic folder, whose patches its generator trained on, and the study stops if any belongs to the
fold's test or validation patients. Arms: real only; + traditional; + each GAN at each synthetic ratio; and
traditional + each GAN at each ratio; with `repeat_control`, the real patches repeated to the traditional arm's
size (as many optimisation steps per epoch, no new images). Each arm runs once per seed (the same seeds for
every arm: paired).

Every patch is tested exactly once over the folds, so each (arm, seed) gives one out-of-fold prediction per
patch; scores are averaged over seeds and their 95 % intervals and paired differences to real only come from a
patient-level bootstrap. With `external_test_dir`, every fold classifier is also scored on those other patients.
Each (fold, arm, seed) run is one file under `runs/`: a killed study continues where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

from ..augment.generator import run_augment
from ..config.loader import Config, derived_config, load_config, render_config, start_output_folder
from ..core.io import atomic_path, atomic_write_csv, atomic_write_text, keep_aside
from ..core.logs import get_logger
from ..data.cv_pool import (STUDY_CLASS_COLUMN, Pool, PoolPatch, assign_folds, load_pool, validation_patients,
                             write_patch_folder)
from ..data.labelled_patches import PatchSet, augmented_patches, check_disjoint, generator_training_dir, written_samples
from ..data.patch_dataset import patch_folder, patch_names, read_resized
from ..errors import DataError, UserError
from ..metrics.classification import multiclass_scores
from ..metrics.intervals import compare_arms, patient_resamples
from ..registry import FAMILIES
from ..train.classifier import class_probabilities, train_classifier
from ..train.trainer import checkpoint_paths, holds_run
from .base import Study

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

log = get_logger("utility")
BASELINE, TRADITIONAL, REPEATED = "real_only", "traditional", "real_repeated"
BOOTSTRAP_SEED = 2024


@dataclass(frozen=True)
class Arm:
    name: str
    source: str  # "" for real_only / traditional
    ratio: float  # synthetic images per real training patch of a synthetic class (0: none)
    traditional: bool
    repeated: bool = False  # the real patches repeated to the traditional arm's size


@dataclass(frozen=True)
class Fold:
    index: int
    train: list[PoolPatch]
    valid: list[PoolPatch]
    test: list[PoolPatch]
    folder: Path

    @property
    def held_out_patients(self) -> set[str]:
        return {p.patient for p in self.valid + self.test}

    def train_count(self, label: int) -> int:
        return sum(p.label == label for p in self.train)


def _ratio_count(ratio: float, real: int) -> int:
    """Synthetic images of a class at `ratio` per real training patch (halves round up)."""
    return math.floor(ratio * real + 0.5)


def _patch_set(pool: Pool, patches: list[PoolPatch], size: int) -> PatchSet:
    return PatchSet(pool.images(patches, size), np.array([p.label for p in patches], dtype=np.int64),
                    ("real",) * len(patches), tuple(p.path for p in patches), tuple(p.name for p in patches))


def _file_hash(path: Path | None) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest() if path is not None else ""


def _run_gan(gan: Config, run_dir: Path) -> None:
    """`train` then `infer` of the derived GAN config, written (resolved, absolute paths) beside its run folder, each
    in its own process as a user would run them: TensorFlow state (graphs, autograph caches, memory) does not carry
    from one of the study's generators into the next, and the run can be repeated by hand. A run killed before its
    first checkpoint cannot resume: it is kept under a timestamped name (`--restart`) and trained again."""
    config_path = run_dir.with_name(f"{run_dir.name}.config")
    atomic_write_text(config_path, render_config(gan))
    restart = holds_run(run_dir) and not checkpoint_paths(run_dir / "checkpoints")
    for command in ("train", "infer"):
        arguments = ["--restart"] if command == "train" and restart else []
        code = subprocess.run([sys.executable, "-m", "mammogan", command, str(config_path), *arguments], check=False).returncode
        if code != 0:
            raise DataError(f"{config_path}: `mammogan {command}` of this study generator exited with {code} "
                            f"(see the log in {run_dir}).")


@FAMILIES.register("utility_cv")
class CrossValidatedUtilityStudy(Study):
    """`mammogan train` runs (or continues) the study, `mammogan evaluate` re-summarises the finished runs."""

    @classmethod
    def train(cls, config: Config, resume: bool) -> int:
        """Continue the study in [train] output_dir; `--restart` keeps a previous one aside and starts over."""
        if not resume and config.train.output_dir.is_dir():
            keep_aside(config.train.output_dir)
        return super().train(config, resume)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.output_dir: Path = config.train.output_dir
        self.u = config.utility
        self.size: int = config.model.image_size
        self.classes: list[str] = list(self.u.classes)
        self.synthetic_classes = list(self.u.synthetic_classes) or self.classes
        unknown = sorted(set(self.synthetic_classes) - set(self.classes))
        if unknown:
            raise config.error("utility", "synthetic_classes", f"{unknown} are not in [utility] classes {self.classes}")
        self.sources = self._sources()
        # Read once, before any work: a source config that does not load stops the study here. A conditional family
        # reads [model] classes and is trained once per fold; an unconditional one once per class.
        self.conditional = {name: load_config(path).reads("model", "classes") for name, path in self.sources.items()}
        self.arms = self._arms()

    # --- plan -------------------------------------------------------------------------------------------

    def _sources(self) -> dict[str, Path]:
        """GAN experiment name (its folder) → config path; the names must differ."""
        sources: dict[str, Path] = {}
        for path in self.u.synthetic_configs:
            name = Path(path).parent.name
            if name in sources or name in (BASELINE, TRADITIONAL, REPEATED):
                raise self.config.error("utility", "synthetic_configs", f"two entries are named {name!r} (their folders); "
                                        "arms are named after the experiment folder, so give each its own")
            sources[name] = Path(path)
        return sources

    def _arms(self) -> list[Arm]:
        arms = [Arm(BASELINE, "", 0.0, False)]
        if self.u.augment_config is not None:
            arms.append(Arm(TRADITIONAL, "", 0.0, True))
            if self.u.repeat_control:
                arms.append(Arm(REPEATED, "", 0.0, False, repeated=True))
        for source in self.sources:
            for ratio in self.u.synthetic_ratios:
                arms.append(Arm(f"{source}@{ratio:g}", source, ratio, False))
        if self.u.augment_config is not None:
            for source in self.sources:
                for ratio in self.u.synthetic_ratios:
                    arms.append(Arm(f"{TRADITIONAL}+{source}@{ratio:g}", source, ratio, True))
        return arms

    def _pool(self) -> Pool:
        u = self.u
        patches_dir = self.config.need("utility", "patches_dir", "the cross-validated utility study")
        pool, left_out = load_pool(patches_dir, list(u.pool_splits), u.target_column, self.classes, u.zoom, u.max_normal_per_image)
        counts = np.bincount(pool.labels, minlength=len(self.classes))
        missing = [name for name, count in zip(self.classes, counts) if count == 0]
        if missing:
            raise self.config.error("utility", "classes", f"no patches of {missing} in {patches_dir} ({', '.join(u.pool_splits)})")
        log.info("Pool: %d patches of %d patients from %s (%s): %s; left out: %s", len(pool.patches), len(set(pool.patients)),
                 patches_dir, "/".join(u.pool_splits), ", ".join(f"{c} {n}" for c, n in zip(self.classes, counts)),
                 ", ".join(f"{k} {v}" for k, v in sorted(left_out.items())) or "none")
        return pool

    def _external(self, pool: Pool) -> Pool | None:
        folder = self.u.external_test_dir
        if folder is None:
            return None
        external, _ = load_pool(folder.parent, [folder.name], self.u.target_column, self.classes, self.u.zoom,
                                self.u.max_normal_per_image)
        shared = sorted(set(external.patients) & set(pool.patients))
        if shared:
            raise self.config.error("utility", "external_test_dir", f"{len(shared)} of its patients are also in the pool "
                                    f"(e.g. {shared[0]}); leave its split out of pool_splits")
        if len(set(external.labels)) < 2:
            raise self.config.error("utility", "external_test_dir", "needs patches of at least two of [utility] classes")
        log.info("External test: %d patches of %d patients from %s", len(external.patches), len(set(external.patients)), folder)
        return external

    def _folds(self, pool: Pool) -> list[Fold]:
        u = self.u
        fold_of = assign_folds(pool, u.folds, u.split_seed)
        folds = []
        rows = []
        for index in range(u.folds):
            test_patients = {p for p, f in fold_of.items() if f == index}
            training = set(fold_of) - test_patients
            valid_patients = validation_patients(pool, training, u.valid_fraction, u.split_seed + index)
            fold = Fold(index, pool.select(training - valid_patients), pool.select(valid_patients), pool.select(test_patients),
                        self.output_dir / "folds" / f"fold{index}")
            empty = [c for i, c in enumerate(self.classes) if not any(p.label == i for p in fold.train)]
            if empty:
                raise self.config.error("utility", "folds", f"fold {index} has no training patches of {empty}; use fewer "
                                        "folds or leave the class out of [utility] classes")
            folds.append(fold)
            for role, patches in (("train", fold.train), ("valid", fold.valid), ("test", fold.test)):
                rows += [{"fold": index, "role": role, "patch": p.name, "patient": p.patient, "class": self.classes[p.label]}
                         for p in patches]
            log.info("  fold %d: %s", index, "; ".join(
                f"{role} {len({p.patient for p in patches})} patients ("
                + ", ".join(f"{c} {sum(p.label == i for p in patches)}" for i, c in enumerate(self.classes)) + ")"
                for role, patches in (("train", fold.train), ("valid", fold.valid), ("test", fold.test))))
        self._check_plan(rows)
        atomic_write_csv(self.output_dir / "folds.csv", rows)
        return folds

    def _check_plan(self, fold_rows: list[dict[str, object]]) -> None:
        """Refuse to continue a study planned with other folds, classifier, budget or recipes: its finished runs
        would be mixed with new ones. Arms, sources and seeds may be added (they only add runs)."""
        u, path = self.u, self.output_dir / "plan.json"
        plan = {
            "folds": hashlib.sha1(json.dumps(fold_rows, sort_keys=True).encode()).hexdigest(),
            "classifier": {key: str(value) for key, value in (
                ("classifier", u.classifier), ("filters", u.filters), ("epochs", u.epochs), ("learning_rate", u.learning_rate),
                ("backbone_weights", u.backbone_weights), ("batch_size", self.config.train.batch_size),
                ("image_size", self.size))},
            "gan_steps": u.gan_steps,
            "augment_config": _file_hash(u.augment_config),
            "sources": {name: _file_hash(config) for name, config in self.sources.items()},
        }
        if path.is_file():
            earlier = json.loads(path.read_text(encoding="utf-8"))
            changed = [key for key in ("folds", "classifier", "gan_steps", "augment_config")
                       if key in earlier and earlier[key] != plan[key]]
            changed += [f"the config of {name}" for name, digest in plan["sources"].items()
                        if earlier.get("sources", {}).get(name, digest) != digest]
            if changed:
                raise UserError(f"{path}: this study was planned with other {', '.join(changed)} (patients of folds, "
                                "classifier settings, gan_steps or a recipe); its finished runs would be mixed with new ones. "
                                "Set another [train] output_dir, or run `1.train --restart` to keep it aside and start over.")
            plan["sources"] = {**earlier.get("sources", {}), **plan["sources"]}
        atomic_write_text(path, json.dumps(plan, indent=1))

    # --- what each fold adds to the real patches ------------------------------------------------------------

    def _traditional(self, fold: Fold, real: PatchSet) -> PatchSet:
        """The augment recipe of [utility] augment_config applied to the fold's training patches."""
        target = fold.folder / "augmented"
        if not (target / "augmentation.csv").is_file():
            partial = fold.folder / "augmented.partial"
            shutil.rmtree(partial, ignore_errors=True)
            source = write_patch_folder(fold.folder / "real", {"train": fold.train}, tuple(self.classes))
            augment = derived_config(self.u.augment_config, {"generator": {
                "input_dir": str(source), "output_dir": str(partial), "splits": ["train"]}})
            if run_augment(augment) != 0:
                raise DataError(f"{partial}: the augmentation of fold {fold.index} failed (see {partial / 'augment.log'}).")
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
        return augmented_patches(target, real, self.size)

    def _gan_runs(self, fold: Fold, source: str) -> dict[str, Path]:
        """Train (or reuse) the source's generator(s) on the fold's training patients; class → synthetic folder."""
        base, conditional = self.sources[source], self.conditional[source]
        needed = {c: _ratio_count(max(self.u.synthetic_ratios), fold.train_count(self.classes.index(c)))
                  for c in self.synthetic_classes}
        groups = {"all": self.classes} if conditional else {c: [c] for c in self.synthetic_classes}
        folders = {}
        for group, classes in groups.items():
            patches = [p for p in fold.train if self.classes[p.label] in classes]
            data = write_patch_folder(fold.folder / "gan_data" / group, {"train": patches}, tuple(self.classes))
            run_dir = fold.folder / "gan" / source / group
            samples = max(needed[c] for c in classes if c in needed)
            overrides = {
                "dataset": {"train_dir": str(data / "train"), "valid_dir": None, "test_dir": None},
                "train": {"output_dir": str(run_dir), "gan_steps": self.u.gan_steps,
                          "steps_per_epoch": max(1, self.u.gan_steps // 4), "snapshot_every": None},
                "eval": {"output_dir": str(run_dir / "evaluation")},
                "infer": {"output_dir": str(run_dir / "synthetic"), "num_samples": int(samples * 1.25) + 8},
            }
            if conditional:
                overrides["dataset"]["class_column"] = STUDY_CLASS_COLUMN
                overrides["model"] = {"classes": self.classes}
            gan = derived_config(base, overrides)
            synthetic = gan.infer.output_dir
            if not (synthetic / "manifest.csv").is_file():
                started = time.perf_counter()
                log.info("  fold %d: training %s on %d patches (%s) for %d steps → %s", fold.index, source, len(patches),
                         group, self.u.gan_steps, run_dir)
                _run_gan(gan, run_dir)
                atomic_write_text(run_dir / "study_seconds.txt", f"{time.perf_counter() - started:.1f}\n")
            for c in classes:
                if c in needed:
                    folders[c] = synthetic
        return folders

    def _check_provenance(self, fold: Fold, source: str, synthetic: Path, patient_of: dict[str, str]) -> dict[str, object]:
        """Whose patches the generator behind `synthetic` trained on: all must be the fold's training patients."""
        gan_train_dir = generator_training_dir(synthetic)
        names = patch_names(gan_train_dir) + [row["source_patch"] for row in written_samples(synthetic) if row.get("source_patch")]
        unknown = sorted(set(names) - set(patient_of))
        if unknown:
            raise DataError(f"{synthetic}: its generator trained on patches the study does not know (e.g. {unknown[0]} in "
                            f"{gan_train_dir}); synthetic images must come from the fold's training patients.")
        patients = {patient_of[name] for name in names}
        leaked = sorted(patients & fold.held_out_patients)
        if leaked:
            raise DataError(f"{synthetic}: its generator trained on patches of {len(leaked)} test/validation patients of fold "
                            f"{fold.index} (e.g. {leaked[0]}); its samples would leak them into training.")
        seconds = synthetic.parent / "study_seconds.txt"
        return {"fold": fold.index, "source": source, "synthetic_dir": str(synthetic), "gan_train_dir": str(gan_train_dir),
                "gan_train_patches": len(names), "gan_train_patients": len(patients), "test_or_valid_patients_among_them": 0,
                "train_seconds": float(seconds.read_text()) if seconds.is_file() else float("nan")}

    def _synthetic_samples(self, fold: Fold, folders: dict[str, Path]) -> dict[str, PatchSet]:
        """Per synthetic class, the written samples the largest ratio takes, read once per fold: first in manifest
        order, so a smaller ratio takes a prefix of a larger one's."""
        samples = {}
        for name in self.synthetic_classes:
            label = self.classes.index(name)
            count = _ratio_count(max(self.u.synthetic_ratios), fold.train_count(label))
            rows = [r for r in written_samples(folders[name]) if r.get("class", name) in (name, "")]
            if len(rows) < count:
                raise DataError(f"{folders[name]}: {len(rows)} written {name} samples, {count} needed for fold {fold.index}; "
                                "lower [utility] synthetic_ratios or remove the folder to sample again.")
            paths = tuple(patch_folder(folders[name]) / r["image"] for r in rows[:count])
            images = read_resized(list(paths), self.size) if paths else np.zeros((0, self.size, self.size), np.float32)
            samples[name] = PatchSet(images, np.full(count, label, dtype=np.int64), ("synthetic",) * count, paths, ("",) * count)
        return samples

    def _synthetic_at(self, fold: Fold, samples: dict[str, PatchSet], ratio: float) -> PatchSet:
        """The synthetic images of an arm at `ratio`: that many per real training patch of each synthetic class."""
        parts = []
        for name, found in samples.items():
            n = _ratio_count(ratio, fold.train_count(self.classes.index(name)))
            parts.append(PatchSet(found.images[:n], found.labels[:n], found.origins[:n], found.paths[:n], found.sources[:n]))
        return sum(parts[1:], parts[0])

    # --- runs -------------------------------------------------------------------------------------------

    def _run_path(self, fold: int, arm: Arm, seed: int) -> Path:
        return self.output_dir / "runs" / f"fold{fold}" / arm.name.replace("+", "_plus_") / f"seed{seed}.csv"

    def _train_one(self, fold: Fold, arm: Arm, seed: int, train: PatchSet, valid: PatchSet, test: PatchSet,
                   external: PatchSet | None, external_patients: list[str]) -> None:
        started = time.perf_counter()
        model, best_epoch = train_classifier(self.config, seed, train, valid, outputs=len(self.classes))
        seconds = time.perf_counter() - started
        rows = []
        for role, patches, patients in (("test", test, [p.patient for p in fold.test]), ("external", external, external_patients)):
            if patches is None:
                continue
            probabilities = class_probabilities(model, patches.images)
            rows += [{"set": role, "patch": name, "patient": patient, "label": int(label),
                      **{f"p_{c}": float(v) for c, v in zip(self.classes, probs)}, "best_epoch": best_epoch,
                      "train_real": train.count("real"), "train_augmented": train.count("augmented"),
                      "train_synthetic": train.count("synthetic"), "seconds": round(seconds, 1)}
                     for name, patient, label, probs in zip(patches.sources, patients, patches.labels, probabilities)]
        atomic_write_csv(self._run_path(fold.index, arm, seed), rows, digits=9)
        fold_scores = multiclass_scores(test.labels, class_probabilities(model, test.images), self.classes)
        log.info("  fold %d  %-34s seed %-3d %4d real %4d aug %4d syn  epoch %3d  macro AUC %.3f  bal. acc %.3f  (%.0f s)",
                 fold.index, arm.name, seed, train.count("real"), train.count("augmented"), train.count("synthetic"),
                 best_epoch, fold_scores["auc"], fold_scores["balanced_accuracy"], seconds)

    def run(self) -> int:
        start_output_folder(self.config, "train", "utility.log")
        started = time.perf_counter()
        pool = self._pool()
        external_pool = self._external(pool)
        folds = self._folds(pool)
        patient_of = {p.name: p.patient for p in pool.patches}
        external = _patch_set(external_pool, list(external_pool.patches), self.size) if external_pool else None
        external_patients = external_pool.patients if external_pool else []
        seeds = list(self.u.seeds)
        log.info("Study: %d folds × %d seeds × %d arms (%s), %s classifier → %s", len(folds), len(seeds), len(self.arms),
                 ", ".join(a.name for a in self.arms), self.u.classifier, self.output_dir)
        provenance = []
        for fold in folds:
            synthetic_folders = {source: self._gan_runs(fold, source) for source in self.sources}
            provenance += [self._check_provenance(fold, source, folder, patient_of)
                           for source, folders in synthetic_folders.items() for folder in sorted(set(folders.values()))]
            pending = [(arm, seed) for arm in self.arms for seed in seeds if not self._run_path(fold.index, arm, seed).is_file()]
            if not pending:
                continue
            real, valid, test = (_patch_set(pool, patches, self.size) for patches in (fold.train, fold.valid, fold.test))
            traditional = self._traditional(fold, real) if self.u.augment_config is not None else None
            synthetic = {source: self._synthetic_samples(fold, folders) for source, folders in synthetic_folders.items()}
            for arm, seed in pending:
                train = real + traditional if arm.traditional and traditional is not None else real
                if arm.repeated and traditional is not None:
                    for _ in range(int(round(len(traditional.labels) / len(real.labels)))):
                        train = train + real
                if arm.source:
                    train = train + self._synthetic_at(fold, synthetic[arm.source], arm.ratio)
                check_disjoint(train, valid + test)
                self._train_one(fold, arm, seed, train, valid, test, external, external_patients)
        if provenance:
            atomic_write_csv(self.output_dir / "provenance.csv", provenance)
            log.info("Provenance: %d synthetic folders, each from a generator trained on its fold's training patients only "
                     "(checked: none of their patches belongs to a test or validation patient) → %s",
                     len(provenance), self.output_dir / "provenance.csv")
        log.info("Study runs finished in %.1f min (this session).", (time.perf_counter() - started) / 60)
        return self.summarise()

    # --- summary ----------------------------------------------------------------------------------------

    def _read_runs(self, arm: Arm) -> list[list[dict[str, str]]] | None:
        """Per seed, the run rows of every fold; None when a run is missing."""
        per_seed = []
        for seed in self.u.seeds:
            rows = []
            for fold in range(self.u.folds):
                path = self._run_path(fold, arm, seed)
                if not path.is_file():
                    return None
                with path.open(newline="", encoding="utf-8") as handle:
                    rows += [dict(row, fold=str(fold)) for row in csv.DictReader(handle)]
            per_seed.append(rows)
        return per_seed

    def summarise(self) -> int:
        """utility.csv, utility.png and utility.md from the run files."""
        start_output_folder(self.config, "train", "utility.log")
        runs = {arm.name: self._read_runs(arm) for arm in self.arms}
        missing = [name for name, found in runs.items() if found is None]
        if runs[BASELINE] is None:
            raise UserError(f"{self.output_dir / 'runs'}: the real_only runs are not finished; run `1.train` for "
                            f"{self.config.path} (it continues where it stopped).")
        if missing:
            log.warning("Unfinished arms left out of the summary (run `1.train` again to finish them): %s", ", ".join(missing))
        arms = [arm for arm in self.arms if runs[arm.name] is not None]
        table = []
        for evaluation in ("cross_validated", "external"):
            rows = self._compare(evaluation, arms, {arm.name: runs[arm.name] for arm in arms})
            table += rows
        atomic_write_csv(self.output_dir / "utility.csv", table)
        self._plot(table, arms)
        self._markdown(table, arms, self._compute_minutes(runs))
        return 0

    def _compute_minutes(self, runs: dict[str, list[list[dict[str, str]]] | None]) -> tuple[float, float]:
        """CPU-clock minutes the recorded runs took: classifiers (per run file) and generators (provenance.csv)."""
        classifier = sum(float(next(row for row in seed_rows if row["fold"] == str(fold))["seconds"])
                         for per_seed in runs.values() if per_seed for seed_rows in per_seed for fold in range(self.u.folds))
        provenance = self.output_dir / "provenance.csv"
        generators = 0.0
        if provenance.is_file():
            with provenance.open(newline="", encoding="utf-8") as handle:
                generators = sum(float(row["train_seconds"]) for row in csv.DictReader(handle) if row["train_seconds"] != "nan")
        return classifier / 60, generators / 60

    def _compare(self, evaluation: str, arms: list[Arm], runs: dict[str, list[list[dict[str, str]]]]) -> list[dict[str, object]]:
        role = "test" if evaluation == "cross_validated" else "external"
        first = [row for row in runs[BASELINE][0] if row["set"] == role]
        if not first:
            return []
        order = sorted(range(len(first)), key=lambda i: (first[i]["fold"], first[i]["patch"]))
        if role == "test":  # one prediction per patch and seed, pooled over the folds
            key = [first[i]["patch"] for i in order]
            labels = np.array([int(first[i]["label"]) for i in order])
            patients = [first[i]["patient"] for i in order]
            predictions = {name: [self._probabilities(rows, role, key, by_fold=False) for rows in per_seed]
                           for name, per_seed in runs.items()}
        else:  # every fold classifier of every seed scores the same external patches
            in_fold0 = [row for row in first if row["fold"] == "0"]
            key = [row["patch"] for row in in_fold0]
            labels = np.array([int(row["label"]) for row in in_fold0])
            patients = [row["patient"] for row in in_fold0]
            predictions = {name: [probs for rows in per_seed for probs in self._probabilities(rows, role, key, by_fold=True)]
                           for name, per_seed in runs.items()}
        resamples = patient_resamples(patients, self.u.bootstrap_samples, BOOTSTRAP_SEED)
        present = sorted(set(labels.tolist()))  # macro means over these; NaN in a resample that lacks one
        compared = compare_arms(labels, predictions, BASELINE,
                                lambda y, p: multiclass_scores(y, p, self.classes, present), resamples)
        rows = []
        for arm in arms:
            first_rows = [row for row in runs[arm.name][0] if row["set"] == "test"]
            counts = {c: float(np.mean([float(row[c]) for row in first_rows])) for c in ("train_real", "train_augmented", "train_synthetic")}
            rows.append({"evaluation": evaluation, "arm": arm.name, "source": arm.source, "ratio": arm.ratio,
                         "traditional": arm.traditional, "test_patches": len(labels), "test_patients": len(set(patients)),
                         "runs": len(predictions[arm.name]), **counts, **compared[arm.name]})
        return rows

    def _probabilities(self, rows: list[dict[str, str]], role: str, key: list[str], by_fold: bool) -> list[np.ndarray] | np.ndarray:
        columns = [f"p_{c}" for c in self.classes]

        def matrix(chosen: list[dict[str, str]]) -> np.ndarray:
            by_patch = {row["patch"]: [float(row[c]) for c in columns] for row in chosen}
            return np.array([by_patch[name] for name in key])

        chosen = [row for row in rows if row["set"] == role]
        if not by_fold:
            return matrix(chosen)
        return [matrix([row for row in chosen if row["fold"] == str(fold)]) for fold in range(self.u.folds)]

    def _plot(self, table: list[dict[str, object]], arms: list[Arm]) -> None:
        evaluations = [e for e in ("cross_validated", "external") if any(row["evaluation"] == e for row in table)]
        metrics = ("auc", "balanced_accuracy")
        figure, axes = plt.subplots(len(metrics), 1, figsize=(max(8, 0.9 * len(arms)), 4 * len(metrics)), squeeze=False)
        positions = np.arange(len(arms))
        width = 0.8 / len(evaluations)
        for axis, metric in zip(axes[:, 0], metrics):
            lowest = 1.0
            for index, evaluation in enumerate(evaluations):
                rows = {row["arm"]: row for row in table if row["evaluation"] == evaluation}
                values = np.array([float(rows[a.name][metric]) for a in arms])
                low = np.array([float(rows[a.name][f"{metric}_low"]) for a in arms])
                high = np.array([float(rows[a.name][f"{metric}_high"]) for a in arms])
                lowest = min(lowest, float(np.nanmin(low)))
                axis.bar(positions + (index - (len(evaluations) - 1) / 2) * width, values, width,
                         yerr=np.nan_to_num([values - low, high - values]), capsize=3,
                         label=f"{evaluation.replace('_', '-')} ({rows[BASELINE]['test_patients']} patients)")
            baseline = next(float(row[metric]) for row in table if row["arm"] == BASELINE and row["evaluation"] == evaluations[0])
            axis.axhline(baseline, color="grey", linewidth=0.8, linestyle="--")
            axis.set_xticks(positions, [a.name for a in arms], rotation=35, ha="right", fontsize=8)
            axis.set_ylim(max(0.0, np.floor((lowest - 0.05) * 10) / 10), 1.0)  # differences matter, not the zero
            axis.set_title("macro AUC" if metric == "auc" else metric.replace("_", " "), fontsize=10)
            axis.grid(axis="y", alpha=0.3)
        axes[0][0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        figure.suptitle(f"{'/'.join(self.classes)} patch classifier: mean over {len(self.u.seeds)} seeds, 95 % patient-bootstrap "
                        f"intervals ({self.u.folds}-fold CV)", fontsize=10)
        figure.tight_layout()
        with atomic_path(self.output_dir / "utility.png") as temp:
            figure.savefig(temp, format="png", dpi=100)
        plt.close(figure)

    def _markdown(self, table: list[dict[str, object]], arms: list[Arm], minutes: tuple[float, float]) -> None:
        def cell(row: dict[str, object], metric: str) -> str:
            return f"{float(row[metric]):.3f} [{float(row[f'{metric}_low']):.3f}, {float(row[f'{metric}_high']):.3f}]"

        def delta(row: dict[str, object], metric: str) -> str:
            if row["arm"] == BASELINE:
                return "—"
            return (f"{float(row[f'{metric}_diff']):+.3f} [{float(row[f'{metric}_diff_low']):+.3f}, "
                    f"{float(row[f'{metric}_diff_high']):+.3f}] p={float(row[f'{metric}_p']):.3f}")

        lines = [f"# Cross-validated utility study ({self.config.path})", "",
                 f"{self.u.folds}-fold patient-level cross-validation × seeds {list(self.u.seeds)}; classes {self.classes} "
                 f"({self.u.target_column}); {self.u.classifier} classifier. Every synthetic image of fold f comes from a "
                 "generator trained on fold f's training patients only (provenance.csv; checked). Intervals: 95 % "
                 f"patient-level bootstrap ({self.u.bootstrap_samples} resamples); Δ: paired difference to real_only.",
                 "", f"Time: {minutes[0]:.1f} min training classifiers, {minutes[1]:.1f} min training and sampling generators.", ""]
        if len(arms) < len(self.arms):
            lines += [f"Unfinished arms left out: {', '.join(a.name for a in self.arms if a not in arms)}.", ""]
        for evaluation in ("cross_validated", "external"):
            rows = [row for row in table if row["evaluation"] == evaluation]
            if not rows:
                continue
            lines += [f"## {evaluation.replace('_', '-')}: {rows[0]['test_patches']} patches of {rows[0]['test_patients']} patients",
                      "", "| arm | train real/aug/syn | macro AUC [95 % CI] | Δ AUC | balanced acc. | Δ bal. acc. | "
                      + " | ".join(f"AUC {c}" for c in self.classes) + " |",
                      "|---|---|---|---|---|---|" + "---|" * len(self.classes)]
            for row in rows:
                counts = f"{row['train_real']:.0f}/{row['train_augmented']:.0f}/{row['train_synthetic']:.0f}"
                lines.append(f"| {row['arm']} | {counts} | {cell(row, 'auc')} | {delta(row, 'auc')} | "
                             f"{cell(row, 'balanced_accuracy')} | {delta(row, 'balanced_accuracy')} | "
                             + " | ".join(f"{float(row[f'auc_{c}']):.3f}" for c in self.classes) + " |")
            lines.append("")
        atomic_write_text(self.output_dir / "utility.md", "\n".join(lines))
        for line in lines:
            if line.startswith(("|", "##")):
                log.info("%s", line)

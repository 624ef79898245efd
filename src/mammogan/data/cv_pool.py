"""The patch pool of the cross-validated utility study: every prepared patch with its patient and class,
patient-level folds, and the fold folders its classifiers, augmentation and generators read.

Patients, not patches, are split: a lesion gives patches at several zooms and a MIAS patient has two films
(one `patient_id` in the prepared `images.csv`), so a patch-level split would test on near-copies of
training patches. Folds are stratified by each patient's rarest class, so the few calcification patients
spread over the folds instead of landing in one.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.io import atomic_write_csv
from ..errors import DataError
from .labels import patch_metadata, zoom_matches
from .patch_dataset import patch_folder, patch_names, read_resized

SEVERITY_NAMES = {"b": "benign", "benign": "benign", "benign_without_callback": "benign", "m": "malignant",
                  "malignant": "malignant"}  # MIAS writes B/M, CBIS BENIGN/MALIGNANT/BENIGN_WITHOUT_CALLBACK


@dataclass(frozen=True)
class PoolPatch:
    name: str
    path: Path
    patient: str
    label: int  # index into the pool's classes
    row: dict[str, str]  # its metadata.csv row


@dataclass(frozen=True)
class Pool:
    patches: tuple[PoolPatch, ...]
    classes: tuple[str, ...]

    @property
    def labels(self) -> np.ndarray:
        return np.array([patch.label for patch in self.patches], dtype=np.int64)

    @property
    def patients(self) -> list[str]:
        return [patch.patient for patch in self.patches]

    def select(self, patients: set[str]) -> list[PoolPatch]:
        return [patch for patch in self.patches if patch.patient in patients]

    def images(self, patches: list[PoolPatch], size: int) -> np.ndarray:
        return read_resized([patch.path for patch in patches], size) if patches else np.zeros((0, size, size), np.float32)


def class_value(column: str, raw: str) -> str:
    """A metadata value as a class name: severities spelt per source (B, MALIGNANT, ...) become benign/malignant."""
    return SEVERITY_NAMES.get(raw.strip().lower(), raw) if column == "severity" else raw


def _patients_by_image(patches_dir: Path) -> dict[str, str]:
    images_csv = patches_dir.parent / "images.csv"
    if not images_csv.is_file():
        raise DataError(f"{images_csv}: not found; the study reads each patch's patient from the images.csv that "
                        "`mammogan prepare` writes beside patches/.")
    with images_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"image_id", "patient_id"} <= set(rows[0]):
        raise DataError(f"{images_csv}: expected the columns image_id and patient_id.")
    return {row["image_id"]: row["patient_id"] for row in rows}


def load_pool(patches_dir: Path, splits: list[str], column: str, classes: list[str], zoom: float,
              max_normal_per_image: int) -> tuple[Pool, dict[str, int]]:
    """The patches of `splits` under a prepared `patches/` folder whose `column` value is one of `classes` (at the
    prepare `zoom`, 0: any), with at most `max_normal_per_image` "normal" patches per film (0: all, first by name).

    Returns the pool and, per value left out, how many patches had it.
    """
    patients = _patients_by_image(patches_dir)
    left_out: dict[str, int] = {}
    normals_of_image: dict[str, int] = {}
    patches = []
    for split in splits:
        split_dir = patches_dir / split
        if not patch_folder(split_dir).is_dir():
            raise DataError(f"{split_dir}: no such patch split (listed in [utility] pool_splits).")
        rows = patch_metadata(split_dir, ("source_image", column), "the cross-validated utility study")
        for name in patch_names(split_dir):
            row = rows.get(name)
            if row is None:
                raise DataError(f"{patches_dir / 'metadata.csv'}: no row for the patch {split}/{name}.")
            value = class_value(column, row[column])
            if value not in classes or not zoom_matches(row, zoom):
                left_out[value or "(empty)"] = left_out.get(value or "(empty)", 0) + 1
                continue
            if value == "normal" and max_normal_per_image:
                normals_of_image[row["source_image"]] = normals_of_image.get(row["source_image"], 0) + 1
                if normals_of_image[row["source_image"]] > max_normal_per_image:
                    left_out["normal beyond max_normal_per_image"] = left_out.get("normal beyond max_normal_per_image", 0) + 1
                    continue
            if row["source_image"] not in patients:
                raise DataError(f"{patches_dir.parent / 'images.csv'}: no patient_id for the image {row['source_image']} "
                                f"of the patch {split}/{name}.")
            patches.append(PoolPatch(name, patch_folder(split_dir) / name, patients[row["source_image"]],
                                     classes.index(value), row))
    return Pool(tuple(patches), tuple(classes)), left_out


def _stratified_parts(patients: list[str], labels: np.ndarray, parts: int, seed: int) -> dict[str, int]:
    """Patient → part (0 … parts-1): patients grouped by their rarest class (rarest groups dealt first), shuffled by
    `seed` within a group, each dealt to the part with fewest patients of that group (ties: fewest patches)."""
    frequency = np.bincount(labels)
    patches_of: dict[str, list[int]] = {}
    for patient, label in zip(patients, labels):
        patches_of.setdefault(patient, []).append(int(label))
    stratum = {patient: min(own, key=lambda label: (frequency[label], label)) for patient, own in patches_of.items()}
    rng = np.random.default_rng(seed)
    part_of: dict[str, int] = {}
    size = np.zeros(parts, dtype=np.int64)
    for group in sorted(set(stratum.values()), key=lambda label: (frequency[label], label)):
        members = sorted(patient for patient, label in stratum.items() if label == group)
        in_group = np.zeros(parts, dtype=np.int64)
        for patient in rng.permutation(members):
            part = int(min(range(parts), key=lambda p: (in_group[p], size[p], p)))
            part_of[str(patient)] = part
            in_group[part] += 1
            size[part] += len(patches_of[str(patient)])
    return part_of


def assign_folds(pool: Pool, folds: int, seed: int) -> dict[str, int]:
    """Patient → test fold (0 … folds-1), stratified by each patient's rarest class."""
    count = len(set(pool.patients))
    if count < folds:
        raise DataError(f"{folds} folds need at least {folds} patients; the pool holds {count}.")
    return _stratified_parts(pool.patients, pool.labels, folds, seed)


def validation_patients(pool: Pool, training: set[str], fraction: float, seed: int) -> set[str]:
    """About `fraction` of the `training` patients, stratified like the folds, for early stopping. The rarest class
    is dealt first, so the slice holds one of its patients; but a class is never moved wholly into it (a class
    with one training patient keeps that patient in training)."""
    chosen = pool.select(training)
    parts = max(2, int(round(1 / fraction)))
    part_of = _stratified_parts([p.patient for p in chosen], np.array([p.label for p in chosen]), parts, seed)
    valid = {patient for patient, part in part_of.items() if part == 0}
    for label in range(len(pool.classes)):
        patients = {p.patient for p in chosen if p.label == label}
        if patients and patients <= valid:
            valid -= patients
    return valid


STUDY_CLASS_COLUMN = "study_class"  # the class name of each patch in a fold folder's metadata.csv


def write_patch_folder(folder: Path, splits: dict[str, list[PoolPatch]], classes: tuple[str, ...]) -> Path:
    """A prepared-style patch folder (`<split>/images`, masks when the source has them, `metadata.csv` with patient
    and study_class columns) that the augmentation and the GAN families read as they read `prepare` output (a
    conditional GAN takes study_class as its class column). Written under a
    temporary name and renamed, so a killed study never leaves a half-written one; an existing one is kept."""
    if folder.is_dir():
        return folder
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rows = []
    for split, patches in splits.items():
        (partial / split / "images").mkdir(parents=True)
        for patch in patches:
            shutil.copyfile(patch.path, partial / split / "images" / patch.name)
            mask = patch.path.parent.parent / "masks" / patch.name
            if mask.is_file():
                (partial / split / "masks").mkdir(exist_ok=True)
                shutil.copyfile(mask, partial / split / "masks" / patch.name)
            rows.append({**patch.row, "split": split, "patient": patch.patient, STUDY_CLASS_COLUMN: classes[patch.label]})
    if not rows:
        raise DataError(f"{folder}: no patches to write.")
    atomic_write_csv(partial / "metadata.csv", rows)
    partial.rename(folder)
    return folder

"""Patient-level train/valid/test assignment, made before any augmentation so nothing leaks."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "valid", "test")


def split_counts(patients: int, ratios: list[float]) -> tuple[int, int, int]:
    """How many patients go to train/valid/test; a non-zero ratio gets at least one when possible.

    The ratios are the config's [prepare] split_ratios, which the loader checks add up to 1 (never rescaled here).
    """
    _, valid_share, test_share = ratios
    valid = round(valid_share * patients)
    test = round(test_share * patients)
    if patients >= 3:
        valid = max(valid, 1 if valid_share > 0 else 0)
        test = max(test, 1 if test_share > 0 else 0)
    valid = min(valid, patients)
    test = min(test, patients - valid)
    return patients - valid - test, valid, test


def assign_splits(patient_of_image: dict[str, str], ratios: list[float], seed: int) -> dict[str, str]:
    """Map image id → split; all images of one patient share a split. Deterministic for a seed."""
    patients = sorted(set(patient_of_image.values()))
    order = np.random.default_rng(seed).permutation(len(patients))
    n_train, n_valid, _ = split_counts(len(patients), ratios)
    split_of_patient = {}
    for rank, index in enumerate(order):
        split = "train" if rank < n_train else "valid" if rank < n_train + n_valid else "test"
        split_of_patient[patients[index]] = split
    return {image: split_of_patient[patient] for image, patient in patient_of_image.items()}

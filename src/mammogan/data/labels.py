"""Patch classes of a prepared split, read from the `metadata.csv` that `prepare` writes beside the splits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DataError
from .patch_dataset import patch_names

def split_labels(split_dir: Path, classes: list[str], column: str, where: str) -> np.ndarray:
    """Class id (index into `classes`) of every patch of a prepared split, in `load_patches` order.

    Labels come from the `metadata.csv` that `prepare` writes beside the splits; `where` names the
    config keys for the error messages.
    """
    metadata = split_dir.parent / "metadata.csv"
    if not metadata.is_file():
        raise DataError(f"{metadata}: not found; the conditional task reads patch classes from the metadata.csv "
                        "that `mammogan prepare` writes beside the patch splits.")
    with metadata.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "patch" not in rows[0] or column not in rows[0]:
        raise DataError(f"{metadata}: expected the columns patch and {column!r} ([dataset] class_column).")
    by_name = {row["patch"]: row[column] for row in rows}
    names = patch_names(split_dir)
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DataError(f"{metadata}: no {column} for {len(missing)} patches of {split_dir}, e.g. {missing[0]}.")
    unknown = sorted({by_name[name] for name in names} - set(classes))
    if unknown:
        raise DataError(f"{metadata}: {column} value(s) {unknown} in {split_dir} are not in {where} {classes}; "
                        "add them to the list (or prepare a split without them).")
    return np.array([classes.index(by_name[name]) for name in names], dtype=np.int32)

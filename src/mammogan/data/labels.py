"""Patch classes of a prepared split, read from the `metadata.csv` that `prepare` writes beside the splits."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .patch_dataset import patch_names

def zoom_matches(row: dict[str, str], zoom: float) -> bool:
    """Whether a metadata row is of the prepare zoom level `zoom` (0: any; rows without a zoom match any)."""
    return zoom == 0 or not row.get("zoom") or math.isclose(float(row["zoom"]), zoom)


def patch_metadata(split_dir: Path, columns: tuple[str, ...], reader: str) -> dict[str, dict[str, str]]:
    """The rows of the `metadata.csv` that `prepare` writes beside the patch splits, by patch file name.

    `columns` must be in it; `reader` says who reads it, for the error messages.
    """
    metadata = split_dir.parent / "metadata.csv"
    if not metadata.is_file():
        raise DataError(f"{metadata}: not found; {reader} reads the metadata.csv that `mammogan prepare` writes beside "
                        "the patch splits.")
    with metadata.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = [column for column in ("patch", *columns) if not rows or column not in rows[0]]
    if missing:
        raise DataError(f"{metadata}: expected the columns {', '.join(dict.fromkeys(('patch', *columns)))} "
                        f"(missing: {', '.join(missing) if rows else 'all rows'}).")
    return {row["patch"]: row for row in rows}


def split_labels(split_dir: Path, classes: list[str], column: str, where: str) -> np.ndarray:
    """Class id (index into `classes`) of every patch of a prepared split, in `load_patches` order.

    `where` names the config keys for the error messages.
    """
    metadata = split_dir.parent / "metadata.csv"
    rows = patch_metadata(split_dir, (column,), f"the conditional task ([dataset] class_column = {column!r})")
    by_name = {name: row[column] for name, row in rows.items()}
    names = patch_names(split_dir)
    missing = [name for name in names if name not in by_name]
    if missing:
        raise DataError(f"{metadata}: no {column} for {len(missing)} patches of {split_dir}, e.g. {missing[0]}.")
    unknown = sorted({by_name[name] for name in names} - set(classes))
    if unknown:
        raise DataError(f"{metadata}: {column} value(s) {unknown} in {split_dir} are not in {where} {classes}; "
                        "add them to the list (or prepare a split without them).")
    return np.array([classes.index(by_name[name]) for name in names], dtype=np.int32)

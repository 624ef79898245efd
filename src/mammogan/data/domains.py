"""The two image domains of unpaired translation (CycleGAN): A and B images of one split, at any size and bit depth.

A split gives its domains in one of two ways:
- `A/` and `B/` sub-folders of images (the classic trainA/trainB layout, one split folder per split), or
- a prepared split partitioned by a column of the table `prepare` writes beside it: `metadata.csv` for a patch
  split (`patches/<split>`), `images.csv` for an image split (`<split>`), e.g. MIAS `background_tissue`
  F (fatty) / G (fatty-glandular) / D (dense).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from .images import list_images, read_image
from .labels import zoom_matches
from .sr_dataset import full_scale_for

DOMAINS = ("A", "B")


@dataclass(frozen=True)
class DomainRule:
    """How a split is partitioned: `column` ("" for A/ and B/ folders), the values of each domain, the patch zoom (0: any)."""

    column: str
    values: dict[str, tuple[str, ...]]
    zoom: float = 0.0

    def describe(self, domain: str) -> str:
        if not self.column:
            return f"the {domain}/ folder"
        return f"{self.column} in {list(self.values[domain])}" + (f" at zoom {self.zoom:g}" if self.zoom else "")


def _table(split_dir: Path) -> tuple[Path, str]:
    """The prepare table beside a split and its file-name column."""
    for name, key in (("metadata.csv", "patch"), ("images.csv", "image_id")):
        if (split_dir.parent / name).is_file():
            return split_dir.parent / name, key
    raise DataError(f"{split_dir}: no metadata.csv (patch split) or images.csv (image split) beside it, which `mammogan "
                    "prepare` writes; or give the split A/ and B/ folders and set [cyclegan] domain_column = \"\".")


def domain_paths(split_dir: Path, rule: DomainRule) -> dict[str, list[Path]]:
    """The image files of each domain in one split, in name order."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder not found.")
    if not rule.column:
        missing = [d for d in DOMAINS if not (split_dir / d).is_dir()]
        if missing:
            raise DataError(f"{split_dir}: expected sub-folders A/ and B/ of images (missing {', '.join(missing)}/), or a "
                            "prepared split with [cyclegan] domain_column set.")
        return {domain: list_images(split_dir / domain) for domain in DOMAINS}
    table, key = _table(split_dir)
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or rule.column not in rows[0]:
        columns = ", ".join(rows[0]) if rows else "no rows"
        raise DataError(f"{table}: no column {rule.column!r} ([cyclegan] domain_column); it has {columns}. Re-run `mammogan "
                        "prepare` to add the source's metadata columns.")
    folder = split_dir / "images"
    present = {path.name: path for path in list_images(folder)} if folder.is_dir() else {}
    if not present:
        raise DataError(f"{folder}: no images in this split.")
    found: dict[str, list[Path]] = {}
    for domain in DOMAINS:
        names = [row[key] if key == "patch" else f"{row[key]}.png" for row in rows
                 if row[rule.column] in rule.values[domain] and zoom_matches(row, rule.zoom)]
        found[domain] = [present[name] for name in sorted(names) if name in present]
    return found



def read_domain(paths: list[Path], data_range: float, min_side: int, where: str) -> list[np.ndarray]:
    """Images as float32 in [0, 1] (each its own size), scaled by `[dataset] data_range` (else their bit depth's maximum);
    one bit depth per domain."""
    images, dtypes = [], set()
    for path in paths:
        image = read_image(path)
        if min(image.shape) < min_side:
            raise DataError(f"{path}: {image.shape[1]}x{image.shape[0]} is smaller than the {min_side} px crops of {where}.")
        dtypes.add(image.dtype.type)
        images.append(np.clip(image.astype(np.float32) / full_scale_for(data_range, image.dtype), 0.0, 1.0))
    if len(dtypes) > 1:
        raise DataError(f"{where}: mixes 8-bit and 16-bit images; prepare them at one bit depth.")
    return images


def load_domains(split_dir: Path, rule: DomainRule, data_range: float, min_side: int, where: str) -> dict[str, list[np.ndarray]]:
    """Both domains of a split; an empty domain is an error naming the rule that selected nothing."""
    found = domain_paths(split_dir, rule)
    for domain, paths in found.items():
        if not paths:
            raise DataError(f"{split_dir} ({where}): no images of domain {domain} ({rule.describe(domain)}).")
    return {domain: read_domain(paths, data_range, min_side, f"{where} domain {domain}") for domain, paths in found.items()}

"""Dataset-level outputs of `prepare`: manifest.json, images.csv, patch metadata CSV and JSONL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..config.loader import Config
from ..core.io import atomic_write_text
from .settings import PrepareSettings
from .splits import SPLITS


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _sr_patches(records: list[dict[str, Any]], size: int, scale: int) -> dict[str, Any]:
    """Where the fixed-size pairs of one scale are and how many each split holds (nothing when off)."""
    if not size:
        return {}
    return {"patches": {"subdir": f"sr_patches_x{scale}", "hr": "images", "lr": "lr", "hr_size": size, "lr_size": size // scale,
                        "count": {split: sum(len(r.get("sr_patches", [])) for r in records if r["split"] == split)
                                  for split in SPLITS}}}


def source_columns(records: list[dict[str, Any]]) -> list[str]:
    """The source metadata written as columns of images.csv and of the patches' metadata.csv: every key whose
    values are text or numbers (MIAS `background_tissue` F/G/D; INbreast `acr` density, `birads`), in name order.

    Lists and missing values are left to manifest.json; so a column can partition a split (e.g. CycleGAN domains).
    """
    keys = {key for record in records for key, value in record.get("metadata", {}).items()
            if isinstance(value, (str, int, float)) and not isinstance(value, bool)}
    return sorted(keys - set(IMAGE_COLUMNS) - set(PATCH_COLUMNS))


def _source_values(record: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    metadata = record.get("metadata", {})
    return {column: metadata.get(column) if isinstance(metadata.get(column), (str, int, float)) else "" for column in columns}


IMAGE_COLUMNS = ("image_id", "split", "patient_id", "laterality", "view", "flipped", "chest_wall_side_from", "crop_box",
                 "resize", "width", "height", "pixel_spacing_mm", "lesions", "classes")
PATCH_COLUMNS = ("patch", "source_image", "split", "lesion_class", "severity", "box", "zoom")


def write_manifests(output_dir: Path, records: dict[str, dict[str, Any]], settings: PrepareSettings, config: Config) -> None:
    ordered = [records[k] for k in sorted(records)]
    manifest = {
        "source_kind": config.prepare.kind,
        "bit_depth": settings.bit_depth,
        "data_range": (1 << settings.bit_depth) - 1,
        "normalisation": "models read pixel / data_range into [0, 1]",
        "orientation": settings.orientation,
        "sr": {f"x{s}": {"lr_subdir": f"lr_x{s}", "degradation": settings.degradation_spec(s).as_dict(), "seed": settings.seed,
                         **_sr_patches(ordered, settings.sr_patch_size, s)}
               for s in settings.sr_scales},
        "sr_patch_size": settings.sr_patch_size,
        "masks": {"masks": "any lesion (0/255)", **{f"masks_{c}": f"{c} (0/255)" for c in ("calcification", "mass", "other")}},
        "splits": {s: sorted(r["image_id"] for r in ordered if r["split"] == s) for s in SPLITS},
        "patients": {s: len({r["patient_id"] for r in ordered if r["split"] == s}) for s in SPLITS},
        "patch_size": settings.patch_size,
    }
    atomic_write_text(output_dir / "manifest.json", json.dumps(manifest, indent=1))
    extra = source_columns(ordered)
    image_rows = [
        {**{k: r[k] for k in ("image_id", "split", "patient_id", "laterality", "view", "flipped", "chest_wall_side_from", "resize", "pixel_spacing_mm")},
         "crop_box": " ".join(map(str, r["crop_box"])), "width": r["size"][0], "height": r["size"][1],
         "lesions": len(r["lesions"]), "classes": " ".join(sorted({l["class"] for l in r["lesions"]})), **_source_values(r, extra)}
        for r in ordered
    ]
    atomic_write_text(output_dir / "images.csv", _csv_text(image_rows, [*IMAGE_COLUMNS, *extra]))
    patches = [p for r in ordered for p in r["patches"]]
    patch_rows = [{**p, "box": " ".join(map(str, p["box"])), **_source_values(r, extra)} for r in ordered for p in r["patches"]]
    atomic_write_text(output_dir / "patches" / "metadata.csv", _csv_text(patch_rows, [*PATCH_COLUMNS, *extra]))
    atomic_write_text(output_dir / "patches" / "manifest.jsonl", "".join(json.dumps(p) + "\n" for p in patches))

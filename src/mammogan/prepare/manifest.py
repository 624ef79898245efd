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
    image_rows = [
        {**{k: r[k] for k in ("image_id", "split", "patient_id", "laterality", "view", "flipped", "chest_wall_side_from", "resize", "pixel_spacing_mm")},
         "crop_box": " ".join(map(str, r["crop_box"])), "width": r["size"][0], "height": r["size"][1],
         "lesions": len(r["lesions"]), "classes": " ".join(sorted({l["class"] for l in r["lesions"]}))}
        for r in ordered
    ]
    columns = ["image_id", "split", "patient_id", "laterality", "view", "flipped", "chest_wall_side_from", "crop_box",
               "resize", "width", "height", "pixel_spacing_mm", "lesions", "classes"]
    atomic_write_text(output_dir / "images.csv", _csv_text(image_rows, columns))
    patches = [p for r in ordered for p in r["patches"]]
    patch_rows = [{**p, "box": " ".join(map(str, p["box"]))} for p in patches]
    atomic_write_text(output_dir / "patches" / "metadata.csv",
                      _csv_text(patch_rows, ["patch", "source_image", "split", "lesion_class", "box", "zoom"]))
    atomic_write_text(output_dir / "patches" / "manifest.jsonl", "".join(json.dumps(p) + "\n" for p in patches))

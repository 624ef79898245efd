"""Per-image clinical metadata read from dataset tables (INbreast.csv/.xls, CBIS-DDSM case descriptions).

One model for every table, so `prepare` and later analysis read laterality, view, density and
findings the same way whatever the source. Unknown values are None, never guessed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

_BIRADS = re.compile(r"^([0-6])([abc])?$")


@dataclass
class Abnormality:
    """One finding listed for an image by a case-description table (one CBIS-DDSM row)."""

    abnormality_type: str  # "mass" or "calcification"
    abnormality_id: int | None = None
    pathology: str | None = None  # MALIGNANT, BENIGN, BENIGN_WITHOUT_CALLBACK
    assessment: str | None = None  # BI-RADS assessment of this finding
    subtlety: int | None = None
    roi_mask_path: str | None = None  # as written in the table (relative to the image root)
    cropped_image_path: str | None = None
    details: dict[str, str | None] = field(default_factory=dict)  # mass shape/margins, calc type/distribution


@dataclass
class ImageMetadata:
    """What a metadata table says about one image."""

    image_id: str
    source_file: str  # the table it came from (file name only)
    patient_id: str | None = None
    laterality: str | None = None  # "L" / "R"
    view: str | None = None  # "CC", "MLO", ...
    density: int | None = None  # ACR / BI-RADS breast density 1-4
    birads: str | None = None  # image-level BI-RADS assessment: "0".."6", "4a".."4c"
    findings: dict[str, bool | None] = field(default_factory=dict)  # e.g. mass / micros / distortion / asymmetry
    abnormalities: list[Abnormality] = field(default_factory=list)
    image_path: str | None = None  # as written in the table, when it names the image file
    problems: list[str] = field(default_factory=list)  # its rows that cannot be read: the image must not be prepared


def column_key(name: Any) -> str:
    """Header cells compared loosely: 'Mass ' == 'mass', 'breast_density' == 'breast density'."""
    return " ".join(str(name).replace("_", " ").split()).lower()


def is_missing(value: Any) -> bool:
    """Empty cells: None, NaN (pandas) and whitespace-only strings."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def text_value(value: Any) -> str | None:
    """A cell as stripped text; numbers that are whole (Excel stores 4 as 4.0) lose the '.0'."""
    if is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def int_value(value: Any) -> int | None:
    """A whole number, or None when the cell is empty or not a whole number."""
    text = text_value(value)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if number.is_integer() else None


def laterality_value(value: Any) -> str | None:
    """'L'/'R' from L, R, LEFT, RIGHT (any case); None otherwise."""
    text = (text_value(value) or "").upper()
    return {"L": "L", "LEFT": "L", "R": "R", "RIGHT": "R"}.get(text)


def birads_value(value: Any) -> str | None:
    """BI-RADS category as text ('2', '4a'); None when empty or not a category."""
    text = (text_value(value) or "").lower().replace(" ", "")
    return text if _BIRADS.match(text) else None

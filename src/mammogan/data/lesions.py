"""The per-image metadata model shared by every source (MIAS, INbreast, CBIS-DDSM, plain folders)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

LESION_CLASSES = ("calcification", "mass", "other")


@dataclass
class Lesion:
    """One annotated finding in source-image pixel coordinates (origin top-left, x right, y down).

    Geometry is a circle (`center` + `radius`), a polygon (`points`), or a single point (`center`,
    radius None, drawn as a disk of configurable size); none when the annotation gives no location.
    """

    lesion_class: str
    center: tuple[float, float] | None = None
    radius: float | None = None
    points: list[tuple[float, float]] | None = None
    severity: str | None = None
    label: str = ""
    where: str = ""  # the annotation it was read from (file, line or ROI), for messages; not part of the record

    @property
    def located(self) -> bool:
        return self.center is not None or bool(self.points)

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) around the geometry in its own coordinates; None without a location."""
        if self.points:
            xs, ys = zip(*self.points)
            return min(xs), min(ys), max(xs), max(ys)
        if self.center is None:
            return None
        (x, y), radius = self.center, self.radius or 0.0
        return x - radius, y - radius, x + radius, y + radius

    def as_dict(self) -> dict[str, Any]:
        return {
            "class": self.lesion_class,
            "label": self.label,
            "severity": self.severity,
            "center": list(self.center) if self.center else None,
            "radius": self.radius,
            "points": [list(p) for p in self.points] if self.points else None,
        }


@dataclass
class SourceImage:
    """One raw mammogram to prepare, with what its source knows about it."""

    image_id: str
    path: Path
    patient_id: str
    laterality: str | None = None  # "L" / "R" / None when unknown
    view: str | None = None
    lesions: list[Lesion] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    coordinate_size: tuple[int, int] | None = None  # (width, height) the lesion coordinates refer to
    # Why the image must not be prepared although its file may be fine: its annotation could not be read
    # (prepared from the rest, it would get wrong labels: a lesion without its mask, or healthy patches over it).
    problem: str | None = None
    # Lesions that take reading files (CBIS-DDSM ROI masks) are read in the worker that prepares the image:
    # called with the image's (width, height), returns the lesions (added to `lesions`) and one line per problem.
    lesion_reader: Callable[[tuple[int, int]], tuple[list[Lesion], list[str]]] | None = None

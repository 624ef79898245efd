"""The MIAS `Info.txt` parser.

Handles the original distribution text: a free-text header, several rows per image, NORM rows
without severity or coordinates, `*NOTE 3*` rows (widespread calcifications: no coordinates),
trailing spaces, and the bottom-left coordinate origin. A row that cannot be read (garbled text,
incomplete or non-numeric coordinates) does not stop the file: it makes only its own image fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from .lesions import Lesion

MIAS_CLASSES = {
    "CALC": "calcification",
    "CIRC": "mass",
    "SPIC": "mass",
    "MISC": "mass",
    "ARCH": "other",
    "ASYM": "other",
}
_ROW = re.compile(r"^(mdb\d{3})\s+([FGD])\s+(CALC|CIRC|SPIC|MISC|ARCH|ASYM|NORM)\b(.*)$")


@dataclass(frozen=True)
class MiasRow:
    image_id: str
    background: str
    abnormality: str
    severity: str | None
    x: int | None
    y: int | None  # as written: origin bottom-left
    radius: int | None
    where: str = ""  # "Info.txt:<line>"
    problem: str | None = None  # why the row cannot be used; its image must not be prepared


def _coordinates(numbers: list[str]) -> tuple[int, int, int] | str:
    """X Y RADIUS as written, or why they cannot be read."""
    if len(numbers) != 3:
        return f"expected the coordinates X Y RADIUS (or none), got {' '.join(numbers)!r}"
    try:
        x, y, radius = (int(float(v)) for v in numbers)
    except ValueError:
        return f"coordinates {numbers} are not numbers"
    return (x, y, radius) if radius > 0 else f"radius {numbers[2]} is not positive"


def parse_info(path: Path) -> dict[str, list[MiasRow]]:
    """All rows of Info.txt grouped by image id (NORM images map to rows with abnormality 'NORM');
    rows that cannot be read are kept with their `problem`."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise DataError(f"{path}: cannot read MIAS Info.txt: {exc}.") from None
    rows: dict[str, list[MiasRow]] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        where = f"{path}:{line_number}"
        match = _ROW.match(line)
        if not match:
            image = re.match(r"^(mdb\d{3})\b", line)
            if image:
                problem = f"unreadable MIAS row {line!r} (expected REFNUM BG CLASS [SEVERITY X Y RADIUS])"
                rows.setdefault(image[1], []).append(MiasRow(image[1], "", "", None, None, None, None, where, problem))
            continue
        image_id, background, abnormality, rest = match.groups()
        rest = re.sub(r"\*NOTE\s*\d+\*", "", rest).split()
        severity = rest[0] if rest and rest[0] in ("B", "M") else None
        numbers = rest[1:] if severity else rest
        coordinates = _coordinates(numbers) if numbers else (None, None, None)
        problem = coordinates if isinstance(coordinates, str) else None
        x, y, radius = (None, None, None) if problem else coordinates
        rows.setdefault(image_id, []).append(MiasRow(image_id, background, abnormality, severity, x, y, radius, where, problem))
    if not rows:
        raise DataError(f"{path}: no MIAS rows (lines like 'mdb001 G CIRC B 535 425 197') found.")
    return rows


def lesions_from_rows(rows: list[MiasRow], reference_size: int) -> list[Lesion]:
    """Circles in top-left pixel coordinates of the `reference_size` frame (row = size - y).

    A DataError names the first row that cannot be read: an image is never labelled from part of its rows.
    """
    lesions = []
    for row in rows:
        if row.problem:
            raise DataError(f"{row.where}: {row.problem}.")
        if row.abnormality == "NORM":
            continue
        lesion_class = MIAS_CLASSES[row.abnormality]
        if row.x is None or row.y is None:
            lesions.append(Lesion(lesion_class, severity=row.severity, label=f"{row.abnormality} (no coordinates)", where=row.where))
            continue
        lesions.append(
            Lesion(
                lesion_class,
                center=(float(row.x), float(reference_size - row.y)),
                radius=float(row.radius or 0),
                severity=row.severity,
                label=row.abnormality,
                where=row.where,
            )
        )
    return lesions


def patient_of(image_id: str) -> str:
    """MIAS lists films in left/right pairs of one patient: mdb001+mdb002, mdb003+mdb004, ..."""
    number = int(image_id[3:])
    return f"mias_p{(number + 1) // 2:03d}"


def laterality_of(image_id: str) -> str:
    """Even file numbers are left breasts, odd ones right (Info.txt, note 1)."""
    return "L" if int(image_id[3:]) % 2 == 0 else "R"

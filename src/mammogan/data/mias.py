"""The MIAS `Info.txt` parser.

Handles the original distribution text: a free-text header, several rows per image, NORM rows
without severity or coordinates, `*NOTE 3*` rows (widespread calcifications: no coordinates),
trailing spaces, and the bottom-left coordinate origin.
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


def parse_info(path: Path) -> dict[str, list[MiasRow]]:
    """All rows of Info.txt grouped by image id (NORM images map to rows with abnormality 'NORM')."""
    try:
        text = path.read_text(encoding="latin-1")
    except OSError as exc:
        raise DataError(f"{path}: cannot read MIAS Info.txt: {exc}.") from None
    rows: dict[str, list[MiasRow]] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        match = _ROW.match(line)
        if not match:
            if re.match(r"^mdb\d{3}\b", line):
                raise DataError(f"{path}:{line_number}: unreadable MIAS row {line!r}.")
            continue
        image_id, background, abnormality, rest = match.groups()
        rest = re.sub(r"\*NOTE\s*\d+\*", "", rest).split()
        severity = rest[0] if rest and rest[0] in ("B", "M") else None
        numbers = rest[1:] if severity else rest
        x = y = radius = None
        if len(numbers) >= 3:
            try:
                x, y, radius = (int(float(v)) for v in numbers[:3])
            except ValueError:
                raise DataError(f"{path}:{line_number}: coordinates {numbers[:3]} are not numbers.") from None
        rows.setdefault(image_id, []).append(MiasRow(image_id, background, abnormality, severity, x, y, radius))
    if not rows:
        raise DataError(f"{path}: no MIAS rows (lines like 'mdb001 G CIRC B 535 425 197') found.")
    return rows


def lesions_from_rows(rows: list[MiasRow], reference_size: int) -> list[Lesion]:
    """Circles in top-left pixel coordinates of the `reference_size` frame (row = size - y)."""
    lesions = []
    for row in rows:
        if row.abnormality == "NORM":
            continue
        lesion_class = MIAS_CLASSES[row.abnormality]
        if row.x is None or row.y is None:
            lesions.append(Lesion(lesion_class, severity=row.severity, label=f"{row.abnormality} (no coordinates)"))
            continue
        lesions.append(
            Lesion(
                lesion_class,
                center=(float(row.x), float(reference_size - row.y)),
                radius=float(row.radius or 0),
                severity=row.severity,
                label=row.abnormality,
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

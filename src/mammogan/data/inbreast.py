"""INbreast annotations and metadata.

- OsiriX plist XML (AllXML/<id>.xml) → `annotations.json` entries with typed ROI fields.
- INbreast.csv (`;`, CRLF, "removed" cells, BI-RADS 4a/4b/4c, whitespace-only ACR) and INbreast.xls
  (trailing-space headers, File Name stored as a float, a blank row and a totals row) → `ImageMetadata`.
- Their per-image merge (`merged_data.json`), the matching of image files to entries by the INbreast id
  (DICOMs are named `<id>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm`), and ROI → `Lesion` conversion.

A bad ROI or file is skipped with a warning naming it; one broken annotation never stops a dataset,
but the image it belongs to is marked (`Annotations.unusable`) so that it is not prepared from the rest.
"""

from __future__ import annotations

import csv
import io
import plistlib
import re
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable
from xml.parsers.expat import ExpatError

from ..errors import DataError
from ..core.logs import get_logger
from .lesions import Lesion
from .metadata import ImageMetadata, birads_value, column_key, int_value, is_missing, laterality_value, text_value

log = get_logger("inbreast")

FINDINGS = ("mass", "micros", "distortion", "asymmetry")  # the X-marked columns of INbreast.xls
_NAME = re.compile(r"^(?P<id>\d+)(?:_(?P<hash>[0-9a-fA-F]+))?(?:_MG_(?P<lat>[LR])_(?P<view>CC|MLO|ML)(?=_|$))?", re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


class _RoiProblem(ValueError):
    """Why one ROI cannot be used."""


def _real(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _RoiProblem(f"expected a real number, got {value!r}")
    try:
        return float(value)
    except ValueError:
        raise _RoiProblem(f"expected a real number, got {value!r}") from None


def _integer(value: Any) -> int:
    number = _real(value)
    if not number.is_integer():
        raise _RoiProblem(f"expected an integer, got {value!r}")
    return int(number)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _RoiProblem(f"expected a string, got {value!r}")
    return value


def parse_point(text: Any) -> list[float]:
    """'(x, y)' or '(x, y, z)' → [x, y(, z)] as numbers."""
    if not isinstance(text, str):
        raise _RoiProblem(f"expected a point string like '(x, y)', got {text!r}")
    inner = text.strip()
    if not re.fullmatch(rf"\(\s*{_NUMBER}(?:\s*,\s*{_NUMBER}){{1,2}}\s*\)", inner):
        raise _RoiProblem(f"expected a point string like '(x, y)', got {text!r}")
    return [float(v) for v in inner[1:-1].split(",")]


def _points(value: Any) -> list[list[float]]:
    if not isinstance(value, list):
        raise _RoiProblem(f"expected an array of point strings, got {value!r}")
    return [parse_point(v) for v in value]


# The ROI fields kept in annotations.json, in the seed's order, with their converters.
ROI_FIELDS: dict[str, Callable[[Any], Any]] = {
    "Area": _real,
    "Center": parse_point,
    "Dev": _real,
    "IndexInImage": _integer,
    "Max": _real,
    "Min": _real,
    "Mean": _real,
    "Name": _string,
    "NumberOfPoints": _integer,
    "Point_mm": _points,
    "Point_px": _points,
    "Total": _real,
    "Type": _integer,
}


def _typed_roi(roi: Any) -> dict[str, Any]:
    if not isinstance(roi, dict):
        raise _RoiProblem(f"expected a dict, got {type(roi).__name__}")
    typed = {}
    for name, convert in ROI_FIELDS.items():
        if name not in roi:
            raise _RoiProblem(f"field {name} is missing")
        try:
            typed[name] = convert(roi[name])
        except _RoiProblem as problem:
            raise _RoiProblem(f"field {name}: {problem}") from None
    if not typed["Point_px"]:
        raise _RoiProblem("Point_px holds no points")
    return typed


@dataclass
class Annotations:
    """`annotations.json` content plus one line per skipped file/ROI or inconsistent count."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # INbreast id → the first problem that lost geometry (a file or ROI skipped): without it, the image
    # would be labelled from a part of its lesions, or as healthy.
    unusable: dict[str, str] = field(default_factory=dict)

    def warn(self, message: str, file_id: str | None = None) -> None:
        """Record a problem; with `file_id`, one by which that image's annotation lost a lesion."""
        self.problems.append(message)
        if file_id is not None:
            self.unusable.setdefault(file_id, message)
        log.warning("%s", message)


def read_annotation_file(path: Path, annotations: Annotations) -> None:
    """Add one XML file's entry (keyed by its stem); problems are recorded, never raised."""
    try:
        data = plistlib.loads(path.read_bytes())
    except (OSError, ExpatError, ValueError, TypeError, OverflowError) as exc:
        annotations.warn(f"{path}: skipped, not a readable OsiriX plist XML ({type(exc).__name__}: {exc}).", path.stem)
        return
    images = data.get("Images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not all(isinstance(i, dict) and isinstance(i.get("ROIs"), list) for i in images):
        annotations.warn(f"{path}: skipped, expected a plist dict with an 'Images' array of dicts holding 'ROIs' arrays.", path.stem)
        return
    rois = []
    for image_index, image in enumerate(images):
        where = f"{path}: image {image_index} ROI" if len(images) > 1 else f"{path}: ROI"
        for roi_index, roi in enumerate(image["ROIs"]):
            try:
                typed = _typed_roi(roi)
            except _RoiProblem as problem:
                annotations.warn(f"{where} {roi_index}: skipped, {problem}.", path.stem)
                continue
            if typed["NumberOfPoints"] != len(typed["Point_px"]):
                annotations.warn(f"{where} {roi_index}: NumberOfPoints = {typed['NumberOfPoints']} but Point_px holds "
                                 f"{len(typed['Point_px'])} points; the count is corrected.")
                typed["NumberOfPoints"] = len(typed["Point_px"])
            rois.append(typed)
        declared = image.get("NumberOfROIs")
        if declared != len(image["ROIs"]):
            where = f"{path}: image {image_index}" if len(images) > 1 else f"{path}"
            annotations.warn(f"{where}: NumberOfROIs = {declared!r} but the file holds {len(image['ROIs'])} ROIs.")
    annotations.entries[path.stem] = {"NumberOfROIs": len(rois), "ROIs": rois}


def read_annotations(folder: Path) -> Annotations:
    """Every `*.xml` directly inside `folder`, keyed by file name without extension."""
    if not folder.is_dir():
        raise DataError(f"{folder}: INbreast annotation folder (AllXML) not found.")
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".xml" and not p.name.startswith("."))
    if not paths:
        raise DataError(f"{folder}: no INbreast XML annotation files (<id>.xml) found.")
    annotations = Annotations()
    for path in paths:
        read_annotation_file(path, annotations)
    return annotations


def roi_class(name: str) -> str:
    """Lesion class from the ROI Name: Calcification(s) → calcification, Mass → mass, anything else → other."""
    text = name.strip().lower()
    if text.startswith("calcification"):
        return "calcification"
    if text.startswith("mass"):
        return "mass"
    return "other"


def lesions_from_rois(rois: list[dict[str, Any]], source: str = "") -> list[Lesion]:
    """One Lesion per ROI in full-DICOM pixels: single points (Type 19) become points drawn as disks of
    `point_radius`; polygons (Type 15) and ellipses (Type 9, stored as their outline) become polygons.
    `source` (the XML file) is kept with each lesion for messages."""
    lesions = []
    for roi in rois:
        points = [(p[0], p[1]) for p in roi["Point_px"]]
        lesion_class = roi_class(roi["Name"])
        where = f"{source}: ROI {roi['IndexInImage']}" if source else ""
        if len(points) == 1:
            lesions.append(Lesion(lesion_class, center=points[0], label=roi["Name"], where=where))
        else:
            lesions.append(Lesion(lesion_class, points=points, label=roi["Name"], where=where))
    return lesions


# --- INbreast.csv / INbreast.xls ---------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";" if ";" in first_line else ",")
    header = [column_key(h) for h in next(reader, [])]
    return [(reader.line_num, dict(zip(header, values))) for values in reader]


def _excel_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    # pandas and xlrd are heavy and read only INbreast's Excel metadata: imported when a workbook is read.
    import pandas as pd
    from xlrd import XLRDError

    engine = "xlrd" if path.suffix.lower() == ".xls" else None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*xlrd.*deprecated.*")  # pandas 3 nudges towards calamine
        try:
            frame = pd.read_excel(path, engine=engine, dtype=object)
        except ImportError as exc:
            raise DataError(f"{path}: reading Excel files needs an extra package ({exc}).") from None
        except (XLRDError, zipfile.BadZipFile, ValueError, KeyError, OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable Excel workbook ({type(exc).__name__}: {exc}).") from None
    columns = [column_key(c) for c in frame.columns]
    return [(index + 2, dict(zip(columns, values))) for index, values in enumerate(frame.itertuples(index=False, name=None))]


def _row_metadata(row: dict[str, Any], where: str, source_file: str) -> ImageMetadata:
    file_id = text_value(row.get("file name"))
    if file_id is None or not file_id.isdigit():
        raise DataError(f"{where}: File Name {row.get('file name')!r} is not an INbreast id (digits).")
    patient = text_value(row.get("patient id"))
    acr = int_value(row.get("acr"))
    if not is_missing(row.get("acr")) and acr not in (1, 2, 3, 4):
        log.warning("%s: ACR %r is not 1-4; stored as null.", where, row.get("acr"))
        acr = None
    birads = birads_value(row.get("bi-rads"))
    if birads is None and not is_missing(row.get("bi-rads")):
        log.warning("%s: Bi-Rads %r is not a BI-RADS category; stored as null.", where, row.get("bi-rads"))
    return ImageMetadata(
        image_id=file_id,
        source_file=source_file,
        patient_id=None if patient is None or patient.lower() == "removed" else patient,
        laterality=laterality_value(row.get("laterality")),
        view=(text_value(row.get("view")) or "").upper() or None,
        density=acr,
        birads=birads,
        findings={name: (None if name not in row else not is_missing(row[name])) for name in FINDINGS},
    )


def read_metadata(path: Path) -> dict[str, ImageMetadata]:
    """INbreast.csv or INbreast.xls(x) → metadata by INbreast id; blank and totals rows are skipped."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataError(f"{path}: INbreast metadata file not found.")
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".xls", ".xlsx"):
        rows = _excel_rows(path)
    else:
        raise DataError(f"{path}: expected INbreast.csv or INbreast.xls, not a {suffix or 'suffix-less'} file.")
    if rows and "file name" not in rows[0][1]:
        raise DataError(f"{path}: no 'File Name' column; found {', '.join(map(repr, rows[0][1]))}.")
    metadata: dict[str, ImageMetadata] = {}
    skipped = 0
    for number, row in rows:
        where = f"{path}:{number}"
        if is_missing(row.get("file name")):
            skipped += 1  # blank rows and the xls totals row carry no File Name
            continue
        try:
            entry = _row_metadata(row, where, path.name)
        except DataError as problem:
            log.warning("%s; row skipped.", problem)
            continue
        if entry.image_id in metadata:
            log.warning("%s: File Name %s is listed twice; the first row is kept.", where, entry.image_id)
            continue
        metadata[entry.image_id] = entry
    if not metadata:
        raise DataError(f"{path}: no image rows (with a File Name) found.")
    if skipped:
        log.info("%s: %d rows without a File Name (blank or totals rows) skipped.", path, skipped)
    return metadata


# --- merge and matching --------------------------------------------------------------------------------------


def merge(annotations: dict[str, dict[str, Any]], metadata: dict[str, ImageMetadata]) -> dict[str, dict[str, Any]]:
    """`merged_data.json`: every id in either source; what a source does not know is null."""
    merged = {}
    for file_id in sorted(set(annotations) | set(metadata)):
        meta, entry = metadata.get(file_id), annotations.get(file_id)
        merged[file_id] = {
            "laterality": meta.laterality if meta else None,
            "view": meta.view if meta else None,
            "acr": meta.density if meta else None,
            "birads": meta.birads if meta else None,
            "findings": dict(meta.findings) if meta else {name: None for name in FINDINGS},
            "in_metadata": meta is not None,
            "annotated": entry is not None,
            "NumberOfROIs": entry["NumberOfROIs"] if entry else None,
            "ROIs": entry["ROIs"] if entry else [],
        }
    return merged


@dataclass(frozen=True)
class InbreastName:
    """What an INbreast image file name says: `<id>_<patient hash>_MG_<L|R>_<CC|ML>_ANON`."""

    file_id: str
    patient_hash: str | None
    laterality: str | None
    view: str | None


def parse_name(stem: str) -> InbreastName | None:
    """None when the name does not start with an INbreast id."""
    match = _NAME.match(stem)
    if not match:
        return None
    view = (match["view"] or "").upper()
    return InbreastName(match["id"], match["hash"], (match["lat"] or "").upper() or None, {"ML": "MLO"}.get(view, view) or None)


@dataclass
class MatchReport:
    """Which image file belongs to which merged entry, and what is missing on either side."""

    matched: dict[str, str] = field(default_factory=dict)  # INbreast id → image file name
    images_without_annotations: list[str] = field(default_factory=list)
    images_without_metadata: list[str] = field(default_factory=list)
    annotations_without_images: list[str] = field(default_factory=list)
    unrecognised_images: list[str] = field(default_factory=list)  # names without an INbreast id
    duplicate_images: list[str] = field(default_factory=list)  # a second file with an id already taken

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def match_images(paths: list[Path], merged: dict[str, dict[str, Any]]) -> tuple[MatchReport, dict[str, Path]]:
    """Link image files (DICOMs or prepared PNGs) to merged entries by the INbreast id in their names.

    Returns the report and the image path of every recognised id (first file wins for duplicates).
    """
    report = MatchReport()
    images: dict[str, Path] = {}
    for path in sorted(paths):
        name = parse_name(path.stem)
        if name is None:
            report.unrecognised_images.append(path.name)
        elif name.file_id in images:
            report.duplicate_images.append(path.name)
        else:
            images[name.file_id] = path
    for file_id, path in images.items():
        entry = merged.get(file_id)
        if entry is not None:
            report.matched[file_id] = path.name
        if entry is None or not entry["annotated"]:
            report.images_without_annotations.append(path.name)
        if entry is None or not entry["in_metadata"]:
            report.images_without_metadata.append(path.name)
    report.annotations_without_images = [i for i, e in merged.items() if e["annotated"] and i not in images]
    return report, images

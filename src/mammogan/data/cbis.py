"""CBIS-DDSM case-description CSVs and ROI mask files.

The four TCIA tables (mass/calc × train/test) → `ImageMetadata` per full mammogram, one `Abnormality`
per row. Quirks handled: `breast density` vs `breast_density`, quoted paths ending in an embedded
newline, density 0. Images and ROI masks are found under the image root either at the table's path
(or a PNG/JPG copy of it) or, as in the NBIA download layout, anywhere inside the case folder the path
starts with (`Mass-Training_P_00001_LEFT_CC_1/...`). The tables swap or repeat the ROI-mask and
cropped-image file names for many rows, so the mask is recognised by content: the binary file.
A row that cannot be read, or an ROI mask that cannot be read or does not fit its image, makes that
image fail (it would be labelled from a part of its lesions); the other images go on.
"""

from __future__ import annotations

import csv
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
import pydicom
from .dicom import DICOM_ERRORS

from ..errors import DataError
from ..core.logs import get_logger
from .images import DICOM_SUFFIXES, RASTER_SUFFIXES, read_image
from .lesions import Lesion, SourceImage
from .metadata import Abnormality, ImageMetadata, column_key, int_value, laterality_value, text_value

log = get_logger("cbis")

_CASE_FOLDER = re.compile(r"^(Calc|Mass)-(Training|Test)_P_\d+_(LEFT|RIGHT)_(CC|MLO)(_\d+)?$", re.IGNORECASE)
_REQUIRED = ("patient id", "left or right breast", "image view", "abnormality type", "image file path")
_DETAILS = ("calc type", "calc distribution", "mass shape", "mass margins")
_CLASSES = {"calcification": "calcification", "mass": "mass"}
_IMAGE_SUFFIXES = DICOM_SUFFIXES + RASTER_SUFFIXES


def _table_path(value: Any) -> str | None:
    """A path cell without the embedded trailing newline, with forward slashes."""
    text = text_value(value)
    return text.replace("\\", "/") if text else None


def case_description_files(path: Path) -> list[Path]:
    """A case-description CSV, or every CSV in a folder of them."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
        if not files:
            raise DataError(f"{path}: no CBIS-DDSM case-description CSVs (*.csv) found.")
        return files
    if not path.is_file():
        raise DataError(f"{path}: CBIS-DDSM case-description CSV not found.")
    return [path]


def read_case_descriptions(paths: list[Path]) -> dict[str, ImageMetadata]:
    """All rows of the tables grouped by full mammogram (the first folder of `image file path`); an
    image with a row that cannot be read has that row in its `problems`."""
    images: dict[str, ImageMetadata] = {}
    orphans: list[tuple[tuple[str | None, ...], str]] = []
    for path in paths:
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle)
                header = [column_key(h) for h in next(reader, [])]
                missing = [c for c in _REQUIRED if c not in header]
                if missing:
                    raise DataError(f"{path}: not a CBIS-DDSM case-description CSV: columns {', '.join(map(repr, missing))} "
                                    f"are missing (found {', '.join(map(repr, header))}).")
                for values in reader:
                    if not any(value.strip() for value in values):
                        continue  # a blank line
                    problem = None if len(values) == len(header) else f"the row has {len(values)} cells, the header {len(header)}"
                    orphan = _add_row(images, dict(zip(header, values)), f"{path}:{reader.line_num}", path.name, problem)
                    if orphan:
                        orphans.append(orphan)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DataError(f"{path}: cannot read the CSV ({exc}).") from None
    for key, problem in orphans:
        named = [meta for meta in images.values() if (meta.patient_id, meta.laterality, meta.view) == key]
        for meta in named:
            meta.problems.append(problem)
        if not named:
            log.warning("%s; it names no image of the tables, so it is left out.", problem)
    if not images:
        raise DataError(f"{', '.join(map(str, paths))}: no CBIS-DDSM rows found.")
    return images


def _add_row(images: dict[str, ImageMetadata], row: dict[str, str], where: str, source_file: str,
             problem: str | None) -> tuple[tuple[str | None, ...], str] | None:
    """Add the row's abnormality to its image. A row that cannot be read (`problem`, or no usable type)
    goes to its image's problems instead; without an image file path it is returned with the patient,
    breast side and view it names, so that it can mark those images."""
    image_path = _table_path(row.get("image file path"))
    abnormality_type = (text_value(row.get("abnormality type")) or "").lower()
    if problem is None and abnormality_type not in _CLASSES:
        problem = f"abnormality type {row.get('abnormality type')!r} is not mass or calcification"
    laterality = laterality_value(row.get("left or right breast"))
    view = (text_value(row.get("image view")) or "").upper() or None
    if not image_path:
        return (text_value(row.get("patient id")), laterality, view), f"{where}: {problem or 'the image file path is empty'}"
    image_id = PurePosixPath(image_path).parts[0]
    density = int_value(row.get("breast density"))
    if density is not None and not 1 <= density <= 4:
        log.warning("%s: breast density %s is not 1-4; stored as null.", where, density)
        density = None
    entry = images.setdefault(image_id, ImageMetadata(
        image_id=image_id,
        source_file=source_file,
        patient_id=text_value(row.get("patient id")),
        laterality=laterality,
        view=view,
        density=density,
        image_path=image_path,
    ))
    if problem:
        entry.problems.append(f"{where}: {problem}")
        return None
    assessment = int_value(row.get("assessment"))
    entry.abnormalities.append(Abnormality(
        abnormality_type=abnormality_type,
        abnormality_id=int_value(row.get("abnormality id")),
        pathology=(text_value(row.get("pathology")) or "").upper() or None,
        assessment=str(assessment) if assessment is not None else None,
        subtlety=int_value(row.get("subtlety")),
        roi_mask_path=_table_path(row.get("roi mask file path")),
        cropped_image_path=_table_path(row.get("cropped image file path")),
        details={name.replace(" ", "_"): text_value(row[name]) for name in _DETAILS if name in row},
    ))
    return None


# --- locating files -------------------------------------------------------------------------------------------


class CbisTree:
    """The image root: table paths resolved directly, or through their case folder wherever it lies."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise DataError(f"{root}: CBIS-DDSM image folder not found.")
        self.root = root
        self.case_folders = {p.name: p for p in root.rglob("*") if p.is_dir() and _CASE_FOLDER.match(p.name)}

    def direct(self, table_path: str) -> Path | None:
        """The file at the table path, or a raster copy of it with the same name and another suffix."""
        target = self.root / table_path
        for candidate in (target, *(target.with_suffix(s) for s in RASTER_SUFFIXES)):
            if candidate.is_file():
                return candidate
        return None

    def in_case_folder(self, table_path: str) -> list[Path]:
        folder = self.case_folders.get(PurePosixPath(table_path).parts[0])
        if folder is None:
            return []
        return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)

    def image(self, table_path: str) -> Path | None:
        found = self.direct(table_path)
        if found:
            return found
        files = self.in_case_folder(table_path)
        return files[0] if len(files) == 1 else None

    def roi_candidates(self, abnormality: Abnormality) -> list[Path]:
        """Files that may be the ROI mask: the listed one first, then the rest of its case folder."""
        listed = [p for p in (abnormality.roi_mask_path, abnormality.cropped_image_path) if p]
        candidates = [self.direct(p) for p in listed] + [f for p in listed for f in self.in_case_folder(p)]
        return list(dict.fromkeys(c for c in candidates if c is not None))


def _stored_pixels(path: Path) -> np.ndarray:
    """Raw pixel values (no LUTs: masks are labels, not intensities)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        try:
            return pydicom.dcmread(path).pixel_array
        except DICOM_ERRORS as exc:
            raise DataError(f"{path}: cannot read the DICOM pixels ({type(exc).__name__}: {exc}).") from None
    return read_image(path)


def _binary(pixels: np.ndarray) -> np.ndarray | None:
    """The foreground of a two-valued image, None for a greyscale picture (a cropped lesion image)."""
    if pixels.ndim != 2:
        return None
    low, high = pixels.min(), pixels.max()
    if high == low or np.count_nonzero((pixels != low) & (pixels != high)):
        return None
    return pixels == high


def mask_lesions(mask: np.ndarray, size: tuple[int, int], abnormality: Abnormality) -> list[Lesion]:
    """Outline polygons of the mask's blobs, scaled from the mask grid to the image grid `size` (w, h)."""
    scale = np.array([size[0] / mask.shape[1], size[1] / mask.shape[0]])
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    label = f"{abnormality.abnormality_type} {abnormality.abnormality_id}"
    lesions = []
    for contour in contours:
        points = [tuple(p) for p in (contour[:, 0, :].astype(np.float64) * scale).tolist()]
        lesions.append(Lesion(_CLASSES[abnormality.abnormality_type], points=points, severity=abnormality.pathology, label=label))
    return lesions


def _check_fits(mask: np.ndarray, mask_path: Path, image: Path, size: tuple[int, int]) -> None:
    """A mask covers its image's frame when it has the image's size or is a scaled copy (the same aspect
    ratio within 1 %, as CBIS-DDSM's half-size masks); any other size cannot be placed on the image."""
    height, width = mask.shape
    if (width, height) == size:
        return
    if abs(width * size[1] - height * size[0]) > 0.01 * width * size[1]:
        raise DataError(f"{mask_path}: ROI mask is {width}x{height} but its image {image} is {size[0]}x{size[1]} "
                        "(another aspect ratio, so not a scaled copy); the lesion cannot be placed.")
    log.warning("%s: ROI mask is %dx%d but the image is %dx%d; scaled to the image.", mask_path, width, height, *size)


def _roi_lesions(candidates: tuple[Path, ...], abnormality: Abnormality, image: Path,
                 size: tuple[int, int]) -> tuple[list[Lesion], str | None]:
    """Lesions from the abnormality's ROI mask, preferring a mask of the image's size; or why there are none.

    A DataError when no mask was found but a candidate could not be read: that file may be the mask.
    """
    masks, unreadable = [], []
    for path in candidates:
        try:
            binary = _binary(_stored_pixels(path))
        except DataError as problem:
            unreadable.append(str(problem))
            continue
        if binary is not None:
            masks.append((binary.shape[::-1] != size, path, binary))
    label = f"{abnormality.abnormality_type} {abnormality.abnormality_id}"
    if not masks and unreadable:
        raise DataError(f"{image}: the ROI mask of its {label} cannot be read: {' '.join(unreadable)}")
    for problem in unreadable:
        log.warning("%s", problem)
    if not masks:
        return [], f"no binary ROI mask found for {abnormality.roi_mask_path}"
    _, path, binary = min(masks, key=lambda m: m[0])
    _check_fits(binary, path, image, size)
    return mask_lesions(binary, size, abnormality), None


@dataclass(frozen=True)
class RoiLesionReader:
    """Reads one image's ROI masks into lesions. Picklable, so the worker preparing the image reads them
    (mask files are as large as the mammogram) instead of the main process before any work starts."""

    image: Path
    abnormalities: tuple[Abnormality, ...]
    candidates: tuple[tuple[Path, ...], ...]  # possible mask files of each abnormality

    def __call__(self, size: tuple[int, int]) -> tuple[list[Lesion], list[str]]:
        lesions, problems = [], []
        for abnormality, candidates in zip(self.abnormalities, self.candidates):
            found, problem = _roi_lesions(candidates, abnormality, self.image, size)
            if problem:
                problems.append(problem)
                found = [Lesion(_CLASSES[abnormality.abnormality_type], severity=abnormality.pathology,
                                label=f"{abnormality.abnormality_type} {abnormality.abnormality_id} (no ROI mask)")]
            lesions.extend(found)
        return lesions, problems


@dataclass
class CbisReport:
    images: int = 0
    missing_images: list[str] = field(default_factory=list)  # image ids whose file is not under the root
    missing_roi_masks: list[str] = field(default_factory=list)  # "image id: reason"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_images(root: Path, metadata: dict[str, ImageMetadata]) -> tuple[list[SourceImage], CbisReport]:
    """A SourceImage for every table image found under `root`; its lesions come from its ROI masks, read
    by `lesion_reader` when the image is prepared (the report's `missing_roi_masks` is filled then)."""
    tree = CbisTree(root)
    report = CbisReport()
    sources = []
    for image_id, meta in metadata.items():
        path = tree.image(meta.image_path or image_id)
        if path is None:
            report.missing_images.append(image_id)
            continue
        sources.append(SourceImage(
            image_id=image_id,
            path=path,
            patient_id=meta.patient_id or image_id,
            laterality=meta.laterality,
            view=meta.view,
            metadata={"density": meta.density, "abnormalities": [asdict(a) for a in meta.abnormalities]},
            lesion_reader=RoiLesionReader(path, tuple(meta.abnormalities),
                                          tuple(tuple(tree.roi_candidates(a)) for a in meta.abnormalities)),
            problem=f"{path}: its table rows cannot be read: {'; '.join(meta.problems)}." if meta.problems else None,
        ))
    report.images = len(sources)
    return sources, report

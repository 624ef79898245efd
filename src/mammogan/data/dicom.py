"""DICOM mammograms → display-ready pixel arrays, with only whitelisted, non-identifying metadata.

Order of operations follows the DICOM grayscale pipeline: Modality LUT (rescale slope/intercept or
LUT sequence), then VOI LUT (window LINEAR / LINEAR_EXACT / SIGMOID, or a VOI LUT sequence; the first
of several), then MONOCHROME1 inversion so dense tissue is bright.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from ..errors import DataError

# The only header fields that leave a DICOM file. Nothing that names, dates or locates a patient.
SAFE_TAGS = (
    "ImageLaterality",
    "Laterality",
    "ViewPosition",
    "Rows",
    "Columns",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "BitsStored",
    "PhotometricInterpretation",
    "Manufacturer",
    "ManufacturerModelName",
    "VOILUTFunction",
    "PresentationIntentType",
)

DICOM_ERRORS = (InvalidDicomError, OSError, ValueError, RuntimeError, NotImplementedError, AttributeError, KeyError, EOFError, TypeError)


@dataclass
class DicomImage:
    pixels: np.ndarray  # float64 in [0, 1], dense tissue bright
    metadata: dict[str, Any]
    laterality: str | None
    view: str | None
    pixel_spacing_mm: float | None


def read_dicom(path: Path, apply_voi: bool) -> DicomImage:
    """Decode one file; any failure becomes a DataError naming the file and the reason."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = pydicom.dcmread(path)
        except DICOM_ERRORS as exc:
            raise DataError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc}).") from None
    # pydicom only warns when a file ends inside an element and then drops that element (often PixelData).
    truncated = [w for w in caught if "End of file reached" in str(w.message)]
    if truncated:
        raise DataError(f"{path}: the DICOM file is truncated ({_one_line(truncated[0].message)})")
    if "PixelData" not in dataset:
        raise DataError(f"{path}: the DICOM file has no pixel data (PixelData element missing).")
    syntax = dataset.file_meta.get("TransferSyntaxUID") if hasattr(dataset, "file_meta") else None
    try:
        pixels = dataset.pixel_array
    except DICOM_ERRORS as exc:
        syntax_text = f"{syntax.name} ({syntax})" if syntax else "unknown transfer syntax"
        hint = (" JPEG 2000 needs pylibjpeg + pylibjpeg-openjpeg; JPEG-LS and 12-bit JPEG Extended need another "
                "plugin (e.g. pylibjpeg-libjpeg or GDCM) and may still be unsupported.") if syntax and syntax.is_compressed else ""
        raise DataError(f"{path}: cannot decode pixel data with transfer syntax {syntax_text}: {_one_line(exc)}{hint}") from None
    if pixels.ndim != 2:
        raise DataError(f"{path}: expected one greyscale frame, got pixel array of shape {pixels.shape}.")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DataError(f"{path}: photometric interpretation {photometric} is not a greyscale mammogram.")
    try:
        values = apply_modality_lut(pixels, dataset).astype(np.float64)
        if apply_voi:
            values = apply_voi_lut(values, dataset, index=0, prefer_lut=True).astype(np.float64)
    except DICOM_ERRORS as exc:
        raise DataError(f"{path}: invalid Modality/VOI LUT ({_one_line(exc)}).") from None
    low, high = float(values.min()), float(values.max())
    if high <= low:
        raise DataError(f"{path}: the image is constant after the LUTs; nothing to prepare.")
    values = (values - low) / (high - low)
    if photometric == "MONOCHROME1":
        values = 1.0 - values
    laterality = _laterality(dataset)
    view = str(dataset.get("ViewPosition", "")).strip() or None
    return DicomImage(
        pixels=values,
        metadata=safe_metadata(dataset),
        laterality=laterality,
        view=view,
        pixel_spacing_mm=_pixel_spacing(dataset),
    )


def _one_line(exc: BaseException | Warning) -> str:
    """The whole message on one line: pydicom puts the failing plugin and its reason on later lines."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return (text or type(exc).__name__).rstrip(".") + "."


def _laterality(dataset: pydicom.Dataset) -> str | None:
    for tag in ("ImageLaterality", "Laterality"):
        value = str(dataset.get(tag, "")).strip().upper()
        if value in ("L", "R"):
            return value
    return None


def _pixel_spacing(dataset: pydicom.Dataset) -> float | None:
    for tag in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dataset.get(tag)
        if value:
            return float(value[0])
    return None


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, (int, float, str)):
        return value
    text = str(value)
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def safe_metadata(dataset: pydicom.Dataset) -> dict[str, Any]:
    """The whitelisted header fields as JSON-ready values."""
    return {tag: _plain(dataset.get(tag)) for tag in SAFE_TAGS if tag in dataset}


def pseudonym(identifier: str, key: bytes) -> str:
    """A stable pseudonymous id: a keyed hash, so it cannot be reversed without the key."""
    return "p" + hmac.new(key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()[:16]

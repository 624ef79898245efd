"""Greyscale image files at full bit depth: read PGM/PNG/JPG/TIFF, write PNG atomically, pair by name."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import DataError
from ..core.io import atomic_write_bytes

RASTER_SUFFIXES = (".png", ".pgm", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom")


def list_images(folder: Path, suffixes: tuple[str, ...] = RASTER_SUFFIXES) -> list[Path]:
    """Image files directly inside `folder`, sorted by name (hidden and temporary files skipped)."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes and not p.name.startswith("."))


@contextlib.contextmanager
def _opencv_silent() -> Iterator[None]:
    """OpenCV's own log off: a file it cannot decode gets the tool's message alone, not `[ WARN ]` lines before it."""
    previous = cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def _decode(path: Path, what: str) -> np.ndarray:
    """Decode any raster file at its stored depth; unreadable files become a DataError naming them."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what}: {exc.strerror or exc}.") from None
    with _opencv_silent():
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if decoded is None:
        raise DataError(f"{path}: not a readable {what} (expected PNG, PGM, JPEG, TIFF or BMP).")
    return decoded


def read_image(path: Path) -> np.ndarray:
    """A 2-D uint8 or uint16 array; colour files are reduced to grey (equal channels are taken as is)."""
    image = _decode(path, "image")
    if image.ndim == 3:
        if image.shape[2] == 4:
            image = image[:, :, :3]
        if np.array_equal(image[:, :, 0], image[:, :, 1]) and np.array_equal(image[:, :, 1], image[:, :, 2]):
            image = image[:, :, 0]
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if image.dtype not in (np.uint8, np.uint16):
        image = _to_uint16(image, path)
    return np.ascontiguousarray(image)


def _to_uint16(image: np.ndarray, path: Path) -> np.ndarray:
    image = image.astype(np.float64)
    low, high = float(image.min()), float(image.max())
    if high <= low:
        raise DataError(f"{path}: the image is constant ({low}); nothing to learn from.")
    return np.round((image - low) / (high - low) * 65535).astype(np.uint16)


def read_mask(path: Path) -> np.ndarray:
    """A uint8 label mask; colour masks (e.g. red circles) are thresholded on their brightest channel."""
    mask = _decode(path, "mask")
    if mask.ndim == 3:
        mask = mask[:, :, :3].max(axis=2)
    if mask.dtype != np.uint8:
        mask = (mask > 0).astype(np.uint8) * 255
    return mask


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a uint8/uint16 greyscale PNG atomically."""
    if image.dtype not in (np.uint8, np.uint16) or image.ndim != 2:
        raise ValueError(f"write_png wants a 2-D uint8/uint16 array, got {image.dtype} {image.shape}")
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise DataError(f"{path}: PNG encoding failed.")
    atomic_write_bytes(path, encoded.tobytes())


"""`mammogan prepare`: raw mammograms → a dataset folder the models read.

Per image: decode (DICOM LUTs / PGM / PNG) → orient (chest wall on one side) → crop to the breast →
resize → write the image, its lesion masks, LR counterparts for every SR scale (optionally also as
fixed-size HR/LR patch pairs) and GAN patches.
Images are assigned to train/valid/test by patient before anything else, so no patient's images
(or their later augmentations) cross splits. Each finished image leaves a record file; re-running
skips finished images unless `overwrite = true`, or unless the settings, split or annotations they
were made with have changed since.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import pydicom

from ..config.loader import Config, start_output_folder
from ..data.breast import Box, breast_mask, chest_wall_side, crop_box, dilate
from ..data.degradation import degrade, trim_to_multiple
from ..data.dicom import DICOM_ERRORS, pseudonym, read_dicom
from ..data.images import DICOM_SUFFIXES, read_image, write_png
from ..data.lesions import LESION_CLASSES, SourceImage
from ..data.masks import GridTransform, class_masks
from ..errors import DataError
from ..registry import PREPARE_KINDS
from ..core.io import atomic_write_text
from ..core.logs import get_logger
from ..core.progress import progress
from .manifest import write_manifests
from .patches import cut_patches, sr_patch_boxes, write_sr_patches
from .settings import PrepareSettings
from .sources import AFTER_RUN
from .splits import assign_splits

log = get_logger("prepare")
RECORDS = ".records"


@dataclass
class Loaded:
    """Decoded pixels in [0, 1] plus what the file itself says about the image."""

    pixels: np.ndarray
    patient_id: str
    laterality: str | None
    view: str | None
    pixel_spacing_mm: float | None
    metadata: dict[str, Any]


def load_source(source: SourceImage, settings: PrepareSettings) -> Loaded:
    if source.path.suffix.lower() in DICOM_SUFFIXES:
        image = read_dicom(source.path, settings.voi_lut)
        return Loaded(image.pixels, source.patient_id, image.laterality or source.laterality,
                      image.view or source.view, image.pixel_spacing_mm, {**source.metadata, **image.metadata})
    raw = read_image(source.path)
    pixels = raw.astype(np.float64) / _full_scale(raw)
    return Loaded(pixels, source.patient_id, source.laterality, source.view, None, dict(source.metadata))


def _full_scale(raw: np.ndarray) -> int:
    """White of a plain image: 16-bit files often hold 10-, 12- or 14-bit data (NYU PNGs stop at 4095)
    and no sBIT chunk, so the smallest bit depth holding the maximum is taken; 8-bit files are 8-bit."""
    if raw.dtype == np.uint8:
        return 255
    return (1 << max(8, int(raw.max()).bit_length())) - 1




def _quantise(pixels: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.round(np.clip(pixels, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


def prepare_one(source: SourceImage, split: str, loaded: Loaded, settings: PrepareSettings) -> dict[str, Any]:
    """Write every output of one image; returns its record."""
    pixels = loaded.pixels
    height, width = pixels.shape
    region = breast_mask(pixels, settings.crop_threshold)
    side, side_reason = chest_wall_side(region, loaded.laterality)
    flip = settings.orientation != "none" and side != settings.orientation
    if flip:
        pixels, region = pixels[:, ::-1], region[:, ::-1]
    if settings.clear_background:
        pixels = np.where(dilate(region, settings.crop_margin), pixels, 0.0)
    box = crop_box(region, settings.crop_margin) if settings.crop_breast else Box(0, 0, width, height)
    pixels = pixels[box.y0 : box.y1, box.x0 : box.x1]
    region = region[box.y0 : box.y1, box.x0 : box.x1]
    resize = 1.0
    if settings.max_size and max(pixels.shape) > settings.max_size:
        resize = settings.max_size / max(pixels.shape)
        size = (max(1, round(pixels.shape[1] * resize)), max(1, round(pixels.shape[0] * resize)))
        pixels = cv2.resize(pixels.astype(np.float32), size, interpolation=cv2.INTER_AREA).astype(np.float64)
        region = cv2.resize(region.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        resize = size[0] / box.width
    multiple = math.lcm(*settings.sr_scales)
    pixels = trim_to_multiple(pixels, multiple)
    region = region[: pixels.shape[0], : pixels.shape[1]]
    if min(pixels.shape) < max(multiple, 8):
        raise DataError(f"{source.path}: only {pixels.shape[1]}x{pixels.shape[0]} pixels remain after cropping; check crop_threshold.")

    coordinate_scale = width / source.coordinate_size[0] if source.coordinate_size else 1.0
    transform = GridTransform(coordinate_scale, width, flip, box.x0, box.y0, resize)
    point_radius = settings.point_radius
    if settings.point_radius_unit == "mm":
        if not loaded.pixel_spacing_mm:
            raise DataError(f"{source.path}: point_radius_unit = \"mm\" but the image has no pixel spacing.")
        point_radius = settings.point_radius / loaded.pixel_spacing_mm * resize
    masks = class_masks(pixels.shape, source.lesions, transform, point_radius)

    image = _quantise(pixels, settings.bit_depth)
    name = f"{source.image_id}.png"
    split_dir = settings.output_dir / split
    write_png(split_dir / "images" / name, image)
    write_png(split_dir / "masks" / name, masks["any"])
    for lesion_class in LESION_CLASSES:
        write_png(split_dir / f"masks_{lesion_class}" / name, masks[lesion_class])
    sr_boxes = (sr_patch_boxes(region, settings.sr_patch_size, settings.min_breast_fraction)
                if settings.sr_patch_size and settings.sr_scales else [])
    for scale in settings.sr_scales:
        low = degrade(image, settings.degradation_spec(scale), seed=settings.seed)
        write_png(split_dir / f"lr_x{scale}" / name, low)
        write_sr_patches(split_dir / f"sr_patches_x{scale}", source.image_id, image, low, scale, sr_boxes)

    patches = cut_patches(source, split, image, masks, region, transform, settings)
    record = {
        "image_id": source.image_id,
        "split": split,
        "patient_id": loaded.patient_id,
        "laterality": loaded.laterality,
        "view": loaded.view,
        "source_size": [width, height],
        "flipped": flip,
        "chest_wall_side_from": side_reason,
        "crop_box": box.as_list(),
        "resize": resize,
        "size": [int(image.shape[1]), int(image.shape[0])],
        "pixel_spacing_mm": loaded.pixel_spacing_mm / resize if loaded.pixel_spacing_mm else None,
        "lesions": [lesion.as_dict() for lesion in source.lesions],
        "lesion_pixels": {c: int((masks[c] > 0).sum()) for c in (*LESION_CLASSES, "any")},
        "metadata": loaded.metadata,
        "patches": [asdict(p) for p in patches],
        "sr_patches": [list(box) for box in sr_boxes],
    }
    return record


def check_lesions_in_frame(source: SourceImage, width: int, height: int) -> None:
    """A lesion wholly outside its image (coordinates of another frame or image, a typo) would give a
    lesion-labelled image with an empty mask: the image fails instead, before anything is written."""
    scale = width / source.coordinate_size[0] if source.coordinate_size else 1.0
    frame_width, frame_height = width / scale, height / scale
    for lesion in source.lesions:
        bounds = lesion.bounds()
        if bounds is None:
            continue
        x0, y0, x1, y1 = bounds
        if x1 < 0 or y1 < 0 or x0 >= frame_width or y0 >= frame_height:
            raise DataError(f"{lesion.where or source.path}: the {lesion.lesion_class} lesion {lesion.label!r} lies outside "
                            f"the {frame_width:g}x{frame_height:g} frame of {source.path} (x {x0:g} to {x1:g}, y {y0:g} to "
                            f"{y1:g}, origin top-left); the annotation does not fit the image.")


def _job(args: tuple[SourceImage, str, PrepareSettings, str]) -> tuple[str, dict[str, Any] | None, str | None]:
    source, split, settings, fingerprint = args
    try:
        loaded = load_source(source, settings)
        height, width = loaded.pixels.shape
        problems: list[str] = []
        if source.lesion_reader is not None:
            lesions, problems = source.lesion_reader((width, height))
            source = replace(source, lesions=source.lesions + lesions, lesion_reader=None)
        check_lesions_in_frame(source, width, height)
        record = {**prepare_one(source, split, loaded, settings), "lesion_problems": problems, "fingerprint": fingerprint}
    except DataError as error:
        return source.image_id, None, str(error)
    # The record is written last: it marks the image as done.
    atomic_write_text(settings.output_dir / RECORDS / f"{source.image_id}.json", json.dumps(record, indent=1))
    return source.image_id, record, None


# Raised when a record gains fields (2: patch severity), so records written before are redone rather than read without them.
RECORD_FORMAT = 2


def _fingerprint(settings: PrepareSettings, source: SourceImage, split: str) -> str:
    """What an image's outputs depend on besides its file: a record with another fingerprint is stale."""
    payload = {"settings": settings.output_values(), "split": split, "lesions": [lesion.as_dict() for lesion in source.lesions],
               "record_format": RECORD_FORMAT}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _remove_outputs(output_dir: Path, record: dict[str, Any]) -> None:
    """Delete what an earlier run wrote for an image that now goes to another split, so that no image
    stays behind in the split it left."""
    split_dir, image_id = output_dir / record["split"], record["image_id"]
    paths = [folder / f"{image_id}.png" for folder in split_dir.glob("*") if folder.is_dir()]
    paths += [folder / f"{image_id}_x{x0}_y{y0}.png" for folder in split_dir.glob("sr_patches_x*/*")
              for x0, y0, _, _ in record.get("sr_patches", [])]
    paths += [output_dir / "patches" / record["split"] / kind / patch["patch"] for patch in record["patches"]
              for kind in ("images", "masks")]
    for path in paths:
        path.unlink(missing_ok=True)


def _patients(sources: list[SourceImage], settings: PrepareSettings) -> dict[str, str]:
    """The one patient id of every source, used for the split and written to the records.

    DICOM patients become keyed pseudonyms of the reader's id, else the header's PatientID (read
    without pixels), else the parent folder or file name.
    """
    patients = {}
    for source in sources:
        if source.path.suffix.lower() not in DICOM_SUFFIXES:
            patients[source.image_id] = source.patient_id
            continue
        identifier = source.patient_id
        if not identifier:
            try:
                identifier = str(pydicom.dcmread(source.path, stop_before_pixels=True).get("PatientID", "")).strip()
            except DICOM_ERRORS:
                identifier = ""  # unreadable files fail later with their own message
        patients[source.image_id] = pseudonym(identifier or source.path.parent.name or source.image_id, settings.pseudonym_key)
    return patients


def _pseudonym_key(config: Config, output_dir: Path) -> bytes:
    path: Path = config.prepare.pseudonym_key_file or output_dir / ".pseudonym_key"
    if not path.exists():
        atomic_write_text(path, secrets.token_hex(32), mode=0o600)  # a secret: owner only, whatever the umask
    return bytes.fromhex(path.read_text().strip())


def _run_jobs(jobs: list[tuple[SourceImage, str, PrepareSettings, str]], workers: int) -> Iterator[tuple[str, dict | None, str | None]]:
    if workers <= 1 or len(jobs) <= 1:
        yield from map(_job, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_job, jobs, chunksize=1)


def run_prepare(config: Config) -> int:
    """Prepare every source image; returns the exit code (2 when some failed, unless on_error = "skip")."""
    config.need("prepare", "output_dir", "prepare")
    output_dir = start_output_folder(config, "prepare", "prepare.log")
    log_path = output_dir / "prepare.log"
    sources = PREPARE_KINDS.get(config.prepare.kind, f"{config.path}: [prepare] kind")(config)
    settings = PrepareSettings.from_config(config, _pseudonym_key(config, output_dir))
    patients = _patients(sources, settings)
    splits = assign_splits(patients, config.prepare.split_ratios, config.prepare.seed)

    records: dict[str, dict[str, Any]] = {}
    failures: dict[str, str] = {}
    jobs = []
    changed = 0
    for source in sources:
        if source.problem:  # takes part in the split (so the others keep theirs once it is fixed), never prepared
            failures[source.image_id] = source.problem
            log.error("FAILED %s", source.problem)
            continue
        source = replace(source, patient_id=patients[source.image_id])
        marker = output_dir / RECORDS / f"{source.image_id}.json"
        split = splits[source.image_id]
        fingerprint = _fingerprint(settings, source, split)
        previous = json.loads(marker.read_text()) if marker.exists() else None
        if previous is not None and previous.get("fingerprint") == fingerprint and not settings.overwrite:
            records[source.image_id] = previous
            continue
        if previous is not None:
            if not settings.overwrite:
                changed += 1
            if previous["split"] != split:
                _remove_outputs(output_dir, previous)
        jobs.append((source, split, settings, fingerprint))
    done_before = len(records)
    log.info("prepare: %d images (%d already done), %d workers → %s", len(sources), done_before, config.prepare.workers, output_dir)
    if changed:
        log.warning("prepare: %d finished images were made with other settings, split or annotations; they are redone.", changed)

    for image_id, record, error in progress(_run_jobs(jobs, config.prepare.workers), total=len(jobs), desc="prepare"):
        if error:
            failures[image_id] = error
            log.error("FAILED %s", error)
        else:
            records[image_id] = record  # type: ignore[assignment]
    write_manifests(output_dir, records, settings, config)
    after_run = AFTER_RUN.get(config.prepare.kind)
    if after_run is not None:
        after_run(config, sources, records)
    log.info("prepare: %d images written, %d already done, %d failed. Dataset: %s (log: %s)",
             len(records) - done_before, done_before, len(failures), output_dir, log_path)
    if failures:
        log.error("Files that could not be prepared:\n  %s", "\n  ".join(failures.values()))
        if config.prepare.on_error == "fail":
            return 2
    return 0

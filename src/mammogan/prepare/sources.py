"""Source readers for `prepare`: each turns `[prepare]` settings into a list of `SourceImage`s."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

from ..config.loader import Config
from ..data import cbis, inbreast
from ..data.images import DICOM_SUFFIXES, RASTER_SUFFIXES, list_images
from ..data.lesions import SourceImage
from ..data.mias import laterality_of, lesions_from_rows, parse_info, patient_of
from ..errors import DataError
from ..registry import PREPARE_KINDS
from ..core.io import atomic_write_text
from ..core.logs import get_logger

log = get_logger("prepare")


@PREPARE_KINDS.register("mias")
def mias_sources(config: Config) -> list[SourceImage]:
    """mini-MIAS PGMs with Info.txt circles; patients are the left/right film pairs.

    An image without a row, or with a row that cannot be read, fails alone (its `problem`); rows of
    images not in input_dir are normal (a subset of the 322 films) and only counted.
    """
    folder = config.need("prepare", "input_dir", "prepare (kind = \"mias\")")
    info = config.need("prepare", "info_file", "prepare (kind = \"mias\")")
    rows = parse_info(info)
    reference = config.prepare.mias_reference_size
    sources = []
    for path in list_images(folder):
        image_id = path.stem
        if image_id not in rows:
            sources.append(SourceImage(image_id=image_id, path=path, patient_id=image_id,
                                       problem=f"{path}: image {image_id} has no row in {info}."))
            continue
        source = SourceImage(
            image_id=image_id,
            path=path,
            patient_id=patient_of(image_id),
            laterality=laterality_of(image_id),
            metadata={"background_tissue": rows[image_id][0].background,
                      "abnormalities": sorted({r.abnormality for r in rows[image_id]})},
            coordinate_size=(reference, reference),
        )
        try:
            source.lesions = lesions_from_rows(rows[image_id], reference)
        except DataError as problem:
            source.problem = f"{path}: its annotation cannot be read: {problem}"
        sources.append(source)
    if not sources:
        raise DataError(f"{folder}: no MIAS images (mdbNNN.pgm) found.")
    absent = len(set(rows) - {source.image_id for source in sources})
    if absent:
        log.info("%s: %d of its %d images are not in %s (not prepared).", info, absent, len(rows), folder)
    return sources


@PREPARE_KINDS.register("images")
def plain_image_sources(config: Config) -> list[SourceImage]:
    """A folder of PNG/JPG/TIFF/PGM mammograms without annotations; one patient per file."""
    folder = config.need("prepare", "input_dir", "prepare (kind = \"images\")")
    sources = [SourceImage(image_id=p.stem, path=p, patient_id=p.stem) for p in list_images(folder, RASTER_SUFFIXES)]
    if not sources:
        raise DataError(f"{folder}: no images with suffixes {', '.join(RASTER_SUFFIXES)} found.")
    return sources


@PREPARE_KINDS.register("dicom")
def dicom_sources(config: Config) -> list[SourceImage]:
    """Every DICOM file below `input_dir`; patient, laterality and view come from the headers at load time."""
    folder: Path = config.need("prepare", "input_dir", "prepare (kind = \"dicom\")")
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found.")
    paths = _dicom_files(folder)
    if not paths:
        raise DataError(f"{folder}: no DICOM files (*.dcm) found.")
    return [SourceImage(image_id=image_id, path=p, patient_id="") for p, image_id in zip(paths, _image_ids(paths))]


@PREPARE_KINDS.register("folders")
def folder_sources(config: Config) -> list[SourceImage]:
    """Mammograms from several folders in one dataset, e.g. DICOM exports beside another site's 16-bit PNGs.

    PNG/TIFF/PGM files directly in each folder, DICOM files also in its sub-folders (often one per patient).
    A raster file's patient is `patient_pattern`'s group on its file name, so one patient's views share a
    split; a file it does not match fails alone. A DICOM's patient comes from its header, as for kind "dicom".
    """
    folders = config.need("prepare", "input_dirs", "prepare (kind = \"folders\")")
    pattern = re.compile(config.prepare.patient_pattern)
    found: list[Path] = []
    for folder in folders:
        found += list_images(folder, RASTER_SUFFIXES)
        found += _dicom_files(folder)
    if not found:
        raise DataError(f"{', '.join(map(str, folders))}: no images ({', '.join(RASTER_SUFFIXES + DICOM_SUFFIXES)}) found.")
    sources = []
    for path, image_id in zip(found, _image_ids(found)):
        if path.suffix.lower() in DICOM_SUFFIXES:
            sources.append(SourceImage(image_id=image_id, path=path, patient_id=""))
            continue
        match = pattern.search(path.stem)
        sources.append(SourceImage(image_id=image_id, path=path, patient_id=match.group(1) if match else image_id,
                                   problem=None if match else f"{path}: [prepare] patient_pattern = "
                                   f"{config.prepare.patient_pattern!r} does not match its name {path.stem!r}."))
    return sources


def _dicom_files(folder: Path) -> list[Path]:
    """The DICOM files in `folder` and its sub-folders (exports are often one folder per patient or study), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DICOM_SUFFIXES)


def _image_ids(paths: list[Path]) -> list[str]:
    """Image ids from file names only: DICOM subfolders are often named by PatientID, which must not leave the
    DICOM. Equal file names in different folders get `_2`, `_3`, ... in sorted order."""
    seen: dict[str, int] = {}
    ids = []
    for path in paths:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        ids.append(path.stem if seen[path.stem] == 1 else f"{path.stem}_{seen[path.stem]}")
    return ids


def _write_json(path: Path, data: object) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def _log_missing(what: str, names: list[str], report: Path) -> None:
    if names:
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        log.warning("%d %s: %s (all in %s)", len(names), what, shown, report)


@PREPARE_KINDS.register("inbreast")
def inbreast_sources(config: Config) -> list[SourceImage]:
    """INbreast DICOMs (or PNG copies on the same pixel grid) named `<id>_...`, with XML ROIs and INbreast.csv/.xls.

    Writes annotations.json, merged_data.json and match_report.json (input files ↔ entries) into
    output_dir first; `inbreast_after_run` adds match_png.json (prepared PNGs ↔ entries) at the end.
    """
    purpose = "prepare (kind = \"inbreast\")"
    folder: Path = config.need("prepare", "input_dir", purpose)
    output_dir: Path = config.need("prepare", "output_dir", purpose)
    annotations_dir: Path = config.need("prepare", "annotations_dir", purpose)
    annotations = inbreast.read_annotations(annotations_dir)
    metadata_file: Path | None = config.prepare.metadata_file
    if metadata_file is None:
        log.warning("%s: [prepare] metadata_file is not set; laterality, view, ACR and BI-RADS are null in merged_data.json.", config.path)
    metadata = inbreast.read_metadata(metadata_file) if metadata_file else {}
    merged = inbreast.merge(annotations.entries, metadata)
    report, images = inbreast.match_images(list_images(folder, DICOM_SUFFIXES + RASTER_SUFFIXES), merged)
    report_path = output_dir / "match_report.json"
    _write_json(output_dir / "annotations.json", annotations.entries)
    _write_json(output_dir / "merged_data.json", merged)
    _write_json(report_path, {**report.as_dict(), "annotation_problems": annotations.problems})
    _log_missing("images without annotations", report.images_without_annotations, report_path)
    _log_missing("annotations without images", report.annotations_without_images, report_path)
    _log_missing("files without an INbreast id in their name (skipped)", report.unrecognised_images, report_path)
    _log_missing("files with an id already taken (skipped)", report.duplicate_images, report_path)
    if not images:
        raise DataError(f"{folder}: no INbreast images named <id>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm (or <id>*.png) found.")
    sources = []
    for file_id, path in images.items():
        name = inbreast.parse_name(path.stem)
        entry = merged.get(file_id, {})
        is_dicom = path.suffix.lower() in DICOM_SUFFIXES
        unusable = annotations.unusable.get(file_id)
        sources.append(SourceImage(
            image_id=file_id,
            path=path,
            # The file-name hash is INbreast's patient key; without it DICOMs fall back to their header.
            patient_id=f"inbreast_{name.patient_hash}" if name and name.patient_hash else ("" if is_dicom else file_id),
            laterality=entry.get("laterality") or (name.laterality if name else None),
            view=entry.get("view") or (name.view if name else None),
            lesions=inbreast.lesions_from_rois(entry.get("ROIs", []), str(annotations_dir / f"{file_id}.xml")),
            metadata={"acr": entry.get("acr"), "birads": entry.get("birads"), "findings": entry.get("findings"),
                      "annotated": file_id in annotations.entries},
            problem=f"{path}: its annotation cannot be read: {unusable}" if unusable else None,
        ))
    return sources


def inbreast_after_run(config: Config, sources: list[SourceImage], records: dict[str, dict[str, Any]]) -> None:
    """matchPNG: link every prepared PNG to its merged_data.json entry by the INbreast id in its name, and
    report images without annotations and annotations without a prepared image (e.g. files that failed)."""
    output_dir: Path = config.prepare.output_dir
    merged = json.loads((output_dir / "merged_data.json").read_text(encoding="utf-8"))
    pngs = [output_dir / r["split"] / "images" / f"{r['image_id']}.png" for r in records.values()]
    report, _ = inbreast.match_images([p for p in pngs if p.is_file()], merged)
    report_path = output_dir / "match_png.json"
    _write_json(report_path, report.as_dict())
    log.info("matchPNG: %d prepared images linked to their annotation/metadata entries (%s).", len(report.matched), report_path)
    _log_missing("prepared images without annotations", report.images_without_annotations, report_path)
    _log_missing("annotations without a prepared image", report.annotations_without_images, report_path)


@PREPARE_KINDS.register("cbis")
def cbis_sources(config: Config) -> list[SourceImage]:
    """CBIS-DDSM full mammograms (DICOM or PNG/JPG copies) listed by the case-description CSVs; lesions from ROI masks.

    Writes match_report.json with the table images not found; `cbis_after_run` adds the abnormalities
    without a usable ROI mask once the workers have read the masks.
    """
    purpose = "prepare (kind = \"cbis\")"
    folder: Path = config.need("prepare", "input_dir", purpose)
    output_dir: Path = config.need("prepare", "output_dir", purpose)
    metadata = cbis.read_case_descriptions(cbis.case_description_files(config.need("prepare", "metadata_file", purpose)))
    sources, report = cbis.source_images(folder, metadata)
    report_path = output_dir / "match_report.json"
    _write_json(report_path, report.as_dict())
    _log_missing("table images not found", report.missing_images, report_path)
    if not sources:
        raise DataError(f"{folder}: none of the {len(metadata)} images in the CBIS-DDSM tables was found "
                        f"(e.g. {next(iter(metadata.values())).image_path}).")
    return sources


def cbis_after_run(config: Config, sources: list[SourceImage], records: dict[str, dict[str, Any]]) -> None:
    """Complete match_report.json with the ROI-mask problems the workers recorded, in table order."""
    report_path: Path = config.prepare.output_dir / "match_report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["missing_roi_masks"] = [f"{s.image_id}: {problem}" for s in sources
                                   for problem in records.get(s.image_id, {}).get("lesion_problems", [])]
    _write_json(report_path, report)
    _log_missing("abnormalities without a usable ROI mask", report["missing_roi_masks"], report_path)


# Dataset-level reports a source kind writes once every image is prepared (read-only table).
AFTER_RUN: dict[str, Callable[[Config, list[SourceImage], dict[str, dict[str, Any]]], None]] = {
    "inbreast": inbreast_after_run,
    "cbis": cbis_after_run,
}

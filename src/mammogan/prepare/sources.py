"""Source readers for `prepare`: each turns `[prepare]` settings into a list of `SourceImage`s."""

from __future__ import annotations

from pathlib import Path

from ..config.loader import Config
from ..data.images import DICOM_SUFFIXES, RASTER_SUFFIXES, list_images
from ..data.lesions import SourceImage
from ..data.mias import laterality_of, lesions_from_rows, parse_info, patient_of
from ..errors import DataError
from ..registry import PREPARE_KINDS


@PREPARE_KINDS.register("mias")
def mias_sources(config: Config) -> list[SourceImage]:
    """mini-MIAS PGMs with Info.txt circles; patients are the left/right film pairs."""
    folder = config.need("prepare", "input_dir", "prepare (kind = \"mias\")")
    info = config.need("prepare", "info_file", "prepare (kind = \"mias\")")
    rows = parse_info(info)
    reference = config.prepare.mias_reference_size
    sources = []
    for path in list_images(folder):
        image_id = path.stem
        if image_id not in rows:
            raise DataError(f"{path}: image {image_id} has no row in {info}.")
        sources.append(
            SourceImage(
                image_id=image_id,
                path=path,
                patient_id=patient_of(image_id),
                laterality=laterality_of(image_id),
                lesions=lesions_from_rows(rows[image_id], reference),
                metadata={"background_tissue": rows[image_id][0].background,
                          "abnormalities": sorted({r.abnormality for r in rows[image_id]})},
                coordinate_size=(reference, reference),
            )
        )
    if not sources:
        raise DataError(f"{folder}: no MIAS images (mdbNNN.pgm) found.")
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
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in DICOM_SUFFIXES)
    if not paths:
        raise DataError(f"{folder}: no DICOM files (*.dcm) found.")
    return [SourceImage(image_id=_dicom_id(p, folder), path=p, patient_id="") for p in paths]


def _dicom_id(path: Path, root: Path) -> str:
    """File ids keep the subfolder (often the patient folder) so equal file names do not collide."""
    relative = path.relative_to(root).with_suffix("")
    return "_".join(relative.parts)

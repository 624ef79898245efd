"""SR inference: super-resolve a folder of mammograms of any size, tile by tile, keeping each file's bit depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config.loader import Config
from ..core.logs import get_logger
from ..core.progress import progress
from ..data.dicom import read_dicom
from ..data.images import DICOM_SUFFIXES, RASTER_SUFFIXES, list_images, read_image, write_png
from ..data.sr_dataset import full_scale_for
from ..errors import DataError
from ..models.io import load_sr_generator
from ..models.sampling import make_runner
from ..models.tiling import tiled_super_resolve

log = get_logger("infer")


def read_input(path: Path, data_range: float) -> tuple[np.ndarray, type, float]:
    """Pixels scaled as in training (`[dataset] data_range`, else the bit depth's maximum → 1.0), the dtype
    to write back and the value 1.0 maps back to. DICOMs come back as full-range 16-bit."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return read_dicom(path, apply_voi=True).pixels.astype(np.float32), np.uint16, float(np.iinfo(np.uint16).max)
    image = read_image(path)
    full_scale = full_scale_for(data_range, image.dtype)
    return image.astype(np.float32) / full_scale, image.dtype.type, full_scale


def super_resolve_folder(config: Config, output_dir: Path) -> int:
    """Every image of [infer] input_dir ×[model] scale into `output_dir`; unreadable files are listed, exit 2."""
    folder = config.need("infer", "input_dir", "SR inference")
    paths = list_images(folder, RASTER_SUFFIXES + DICOM_SUFFIXES)
    if not paths:
        raise DataError(f"{folder}: no PNG/PGM/JPEG/TIFF/DICOM images to super-resolve.")
    runner = make_runner(load_sr_generator(config))
    scale, settings = config.model.scale, config.infer
    failures = []
    for path in progress(paths, total=len(paths), desc="super-resolve"):
        try:
            lr, dtype, full_scale = read_input(path, config.dataset.data_range)
        except DataError as error:
            failures.append(str(error))
            log.error("FAILED %s", error)
            continue
        sr = tiled_super_resolve(runner, lr, scale, settings.tile_size, settings.tile_overlap, settings.tile_batch)
        write_png(output_dir / f"{path.stem}.png", np.round(np.clip(sr, 0, 1) * full_scale).astype(dtype))
    log.info("Super-resolved %d of %d images (×%d) into %s", len(paths) - len(failures), len(paths), scale, output_dir)
    return 2 if failures else 0

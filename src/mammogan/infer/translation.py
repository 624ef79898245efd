"""CycleGAN inference: translate a folder of images into the other domain, whole images tile by tile.

Bit depth is kept (8-bit in, 8-bit out; DICOMs become 16-bit PNGs as in SR inference). Translation keeps
geometry, so a lesion mask beside an input (`masks/<name>` of a prepared split) is copied unchanged beside
its translation, and the manifest records source, direction and, for a patch split, the source's lesion
class: the folder is a `[utility] synthetic_dir` arm as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..config.loader import Config
from ..core.io import atomic_write_bytes, atomic_write_csv
from ..core.logs import get_logger
from ..core.progress import progress
from ..data.images import DICOM_SUFFIXES, RASTER_SUFFIXES, list_images, write_png
from ..data.labels import patch_metadata
from ..data.patch_dataset import patch_folder
from ..errors import DataError
from ..models.cyclegan import input_multiple, translator_file
from ..models.io import generator_path, load_model
from ..models.sampling import make_runner
from ..models.tiling import tiled_super_resolve
from .super_resolution import read_input

log = get_logger("infer")

def translate_image(run: Callable[[np.ndarray], np.ndarray], image: np.ndarray, multiple: int, tile: int, overlap: int,
                    batch: int) -> np.ndarray:
    """A whole 2-D image in [0, 1], mirror-padded to sides that are multiples of `multiple`, translated in blended
    tiles (as SR inference), cropped back.

    Tile starts stay multiples of `multiple` (the overlap is rounded down to one), so every tile sees the strided
    convolutions' sampling grid of the whole image: with a local translator the tiles then equal the whole image.
    """
    height, width = image.shape
    overlap = min(overlap, tile // 2) // multiple * multiple
    pad_h, pad_w = -height % multiple, -width % multiple
    padded = np.pad(image, ((0, pad_h), (0, pad_w)), mode="reflect") if pad_h or pad_w else image

    def unit_run(chunk: np.ndarray) -> np.ndarray:
        return (run(chunk * 2.0 - 1.0) + 1.0) / 2.0

    out = tiled_super_resolve(unit_run, padded, 1, tile, overlap, batch)
    return np.clip(out[:height, :width], 0.0, 1.0)


def _lesion_classes(folder: Path) -> dict[str, str]:
    """Patch name → lesion class when `folder` is a prepared patch split (metadata.csv beside it), else {}."""
    if not (folder.parent / "metadata.csv").is_file():
        return {}
    return {name: row["lesion_class"] for name, row in patch_metadata(folder, ("lesion_class",), "CycleGAN inference").items()}


def translate_folder(config: Config, output_dir: Path) -> int:
    """Every image of [infer] input_dir through the `[cyclegan] direction` translator into `output_dir/images`; unreadable
    files are listed and skipped (exit 2)."""
    cfg, settings = config, config.infer
    direction = cfg.cyclegan.direction
    folder = cfg.need("infer", "input_dir", "CycleGAN inference")
    source = patch_folder(folder)
    paths = list_images(source, RASTER_SUFFIXES + DICOM_SUFFIXES)
    if not paths:
        raise DataError(f"{source}: no PNG/PGM/JPEG/TIFF/DICOM images to translate.")
    model = load_model(generator_path(cfg, translator_file(direction)))
    multiple = input_multiple(model)
    if settings.tile_size % multiple:
        raise cfg.error("infer", "tile_size", f"must be a multiple of {multiple}: the translator halves its input "
                        f"{multiple.bit_length() - 1} times")
    run = make_runner(model)
    classes = _lesion_classes(folder)
    masks = folder / "masks"
    rows, failures = [], []
    for path in progress(paths, total=len(paths), desc=f"translate {direction}"):
        try:
            image, dtype, full_scale = read_input(path, cfg.dataset.data_range)
            if min(image.shape) < 2:
                raise DataError(f"{path}: {image.shape[1]}x{image.shape[0]} is too small to translate.")
        except DataError as error:
            failures.append(str(error))
            log.error("FAILED %s", error)
            continue
        out = translate_image(run, image, multiple, settings.tile_size, settings.tile_overlap, settings.tile_batch)
        name = f"{path.stem}.png"
        write_png(output_dir / "images" / name, np.round(out * full_scale).astype(dtype))
        mask = masks / path.name
        if mask.is_file():
            atomic_write_bytes(output_dir / "masks" / name, mask.read_bytes())
        rows.append({"image": name, "source_patch": path.name, "source": str(path), "direction": direction,
                     "class": classes.get(path.name, ""), "mask": name if mask.is_file() else "", "status": "written"})
    if rows:
        atomic_write_csv(output_dir / "manifest.csv", rows)
    log.info("Translated %d of %d images (%s) into %s", len(rows), len(paths), direction, output_dir)
    return 2 if failures else 0

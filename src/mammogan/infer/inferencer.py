"""`mammogan infer`: super-resolve a folder of mammograms of any size, or sample a synthetic dataset."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..config.loader import Config, write_resolved_config
from ..data.images import DICOM_SUFFIXES, RASTER_SUFFIXES, list_images, read_image, write_png
from ..errors import DataError
from ..utils.io import atomic_write_text
from ..utils.logs import add_log_file, get_logger
from ..utils.progress import progress
from .model_io import generator_path, load_generator, make_runner
from .tiling import tiled_super_resolve

log = get_logger("infer")


def read_input(path: Path) -> tuple[np.ndarray, type]:
    """Pixels in [0, 1] and the dtype to write back (DICOMs come back as 16-bit)."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        from ..data.dicom import read_dicom

        return read_dicom(path, apply_voi=True).pixels.astype(np.float32), np.uint16
    image = read_image(path)
    return image.astype(np.float32) / np.iinfo(image.dtype).max, image.dtype.type


class Inferencer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.output_dir: Path = config.infer.output_dir

    def run(self) -> int:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        add_log_file(self.output_dir, "infer.log")
        write_resolved_config(self.config, self.output_dir)
        if self.config.model.task == "srgan":
            return self._super_resolve()
        return self._sample()

    def _super_resolve(self) -> int:
        cfg = self.config
        folder = cfg.need("infer", "input_dir", "SR inference")
        paths = list_images(folder, RASTER_SUFFIXES + DICOM_SUFFIXES)
        if not paths:
            raise DataError(f"{folder}: no PNG/PGM/JPEG/TIFF/DICOM images to super-resolve.")
        runner = make_runner(load_generator(cfg))
        failures = []
        for path in progress(paths, total=len(paths), desc="super-resolve"):
            try:
                lr, dtype = read_input(path)
            except DataError as error:
                failures.append(str(error))
                log.error("FAILED %s", error)
                continue
            sr = tiled_super_resolve(runner, lr, cfg.model.scale, cfg.infer.tile_size, cfg.infer.tile_overlap, cfg.infer.tile_batch)
            top = np.iinfo(dtype).max
            write_png(self.output_dir / f"{path.stem}.png", np.round(np.clip(sr, 0, 1) * top).astype(dtype))
        log.info("Super-resolved %d of %d images (×%d) into %s", len(paths) - len(failures), len(paths), cfg.model.scale, self.output_dir)
        return 2 if failures else 0

    def _sample(self) -> int:
        """Synthetic images from seeded latents, as a dataset folder with a manifest."""
        cfg = self.config
        model = load_generator(cfg)
        runner = make_runner(model)
        rng = np.random.default_rng(cfg.infer.seed)
        latents = rng.standard_normal((cfg.infer.num_samples, cfg.model.latent_dim)).astype(np.float32)
        images = np.clip((runner(latents)[..., 0] + 1.0) / 2.0, 0.0, 1.0)
        rows = []
        for index, image in enumerate(images):
            name = f"synthetic_s{cfg.infer.seed}_{index:05d}.png"
            write_png(self.output_dir / "images" / name, np.round(image * 255).astype(np.uint8))
            rows.append({"image": name, "seed": cfg.infer.seed, "index": index, "checkpoint": str(generator_path(cfg)),
                         "task": cfg.model.task})
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(self.output_dir / "manifest.csv", buffer.getvalue())
        log.info("Sampled %d synthetic images into %s", len(rows), self.output_dir / "images")
        return 0

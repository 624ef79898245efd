"""`mammogan infer`: super-resolve a folder of mammograms of any size, or sample a synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config.loader import Config, write_resolved_config
from ..data.sr_dataset import full_scale_for
from ..data.images import DICOM_SUFFIXES, RASTER_SUFFIXES, list_images, read_image, write_png
from ..data.mask_prior import inference_masks
from ..errors import DataError
from ..registry import FAMILIES
from ..core.io import atomic_write_csv
from ..core.logs import add_log_file, get_logger
from ..core.progress import progress
from ..models.io import generator_path, load_generator
from ..models.sampling import class_count, make_runner, sample_images
from .tiling import tiled_super_resolve

log = get_logger("infer")


def sample_name(seed: int, index: int) -> str:
    """File name of synthetic sample `index` of latent seed `seed` (evaluation names its samples alike)."""
    return f"synthetic_s{seed}_{index:05d}.png"


def read_input(path: Path, data_range: float) -> tuple[np.ndarray, type, float]:
    """Pixels scaled as in training (`[dataset] data_range`, else the bit depth's maximum → 1.0), the dtype
    to write back and the value 1.0 maps back to. DICOMs come back as full-range 16-bit."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        from ..data.dicom import read_dicom

        return read_dicom(path, apply_voi=True).pixels.astype(np.float32), np.uint16, float(np.iinfo(np.uint16).max)
    image = read_image(path)
    full_scale = full_scale_for(data_range, image.dtype)
    return image.astype(np.float32) / full_scale, image.dtype.type, full_scale


class Inferencer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.output_dir: Path = config.infer.output_dir

    def run(self) -> int:
        if hasattr(FAMILIES.get(self.config.model.task), "summarise"):
            raise self.config.error("model", "task", "a benchmark trains classifiers, not a generator: there is nothing to infer")
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
                lr, dtype, full_scale = read_input(path, cfg.dataset.data_range)
            except DataError as error:
                failures.append(str(error))
                log.error("FAILED %s", error)
                continue
            sr = tiled_super_resolve(runner, lr, cfg.model.scale, cfg.infer.tile_size, cfg.infer.tile_overlap, cfg.infer.tile_batch)
            write_png(self.output_dir / f"{path.stem}.png", np.round(np.clip(sr, 0, 1) * full_scale).astype(dtype))
        log.info("Super-resolved %d of %d images (×%d) into %s", len(paths) - len(failures), len(paths), cfg.model.scale, self.output_dir)
        return 2 if failures else 0

    def _sample(self) -> int:
        """Synthetic images from seeded latents, as a dataset folder with a manifest.

        Mask-to-image generators also get a mask each (`inference_masks`), written to `masks/` under the
        image's name, with its source in the manifest: the `{images,masks}` layout of the prepared splits.

        With `reject_near_copies`, samples the memorisation check flags are not written (a stale file of
        that name is removed); the manifest keeps their row with status `rejected_near_copy`.
        """
        cfg = self.config
        generator = load_generator(cfg)
        labels = self._class_labels(generator)
        count = cfg.infer.num_samples if labels is None else len(labels)
        masks, sources = inference_masks(cfg, count) if cfg.model.task == "mask_to_image" else (None, [])
        images = sample_images(generator, count, cfg.model.latent_dim, cfg.infer.seed, labels=labels, masks=masks)
        names = [sample_name(cfg.infer.seed, index) for index in range(len(images))]
        checks = self._memorisation(images, names) if cfg.infer.reject_near_copies else {}
        rows = []
        for index, (name, image) in enumerate(zip(names, images)):
            row = {"image": name, "seed": cfg.infer.seed, "index": index, "checkpoint": str(generator_path(cfg)),
                   "task": cfg.model.task, **({} if labels is None else {"class": cfg.model.classes[labels[index]]}),
                   **({} if masks is None else {"mask": name, "mask_source": sources[index]}), **checks.get(name, {})}
            target, mask_target = self.output_dir / "images" / name, self.output_dir / "masks" / name
            if row.get("status") == "rejected_near_copy":
                target.unlink(missing_ok=True)
                mask_target.unlink(missing_ok=True)
            else:
                write_png(target, np.round(image * 255).astype(np.uint8))
                if masks is not None:  # the segmentation label of the image, 0/255 like prepared masks
                    write_png(mask_target, (masks[index] * 255).astype(np.uint8))
            rows.append(row)
        atomic_write_csv(self.output_dir / "manifest.csv", rows)
        rejected = sum(row.get("status") == "rejected_near_copy" for row in rows)
        log.info("Sampled %d synthetic images into %s%s", len(rows) - rejected, self.output_dir / "images",
                 f" ({rejected} near-copies of training patches left out)" if checks else "")
        return 0

    def _class_labels(self, generator) -> np.ndarray | None:
        """Conditional generators: `[infer] num_samples` class ids per `[model] classes` entry (None: unconditional)."""
        classes = class_count(generator)
        if not classes:
            return None
        if len(self.config.model.classes) != classes:
            raise self.config.error("model", "classes", f"the trained generator has {classes} classes; "
                                    f"list the {classes} names it was trained with, in order")
        return np.repeat(np.arange(classes, dtype=np.int32), self.config.infer.num_samples)

    def _memorisation(self, images: np.ndarray, names: list[str]) -> dict[str, dict[str, object]]:
        """Manifest columns per sample from the memorisation check (report files go beside the manifest)."""
        from ..metrics.memorisation import check_against_training, configured_extractor

        cfg = self.config
        report = check_against_training(cfg, images, names, self.output_dir, "[infer] reject_near_copies",
                                        configured_extractor(cfg))
        result = report.synthetic
        return {name: {"nearest_ssim": float(result.ssim.similarity[i]), "nearest_cosine": float(result.cosine.similarity[i]),
                       "status": "rejected_near_copy" if result.near_copy[i] else "written"}
                for i, name in enumerate(names)}

"""SR evaluation: the trained generator against bicubic on the test split, whole images and lesion ROIs.

Writes `per_image.csv` (every metric for model and bicubic, whole image and inside lesion ROIs),
`evaluation.csv` (mean ± std and the gain over bicubic) and side-by-side comparison crops.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from ..visual.tiles import sr_tile, tile_regions
from ..config.loader import Config
from ..data.sr_dataset import SRSplit, load_split, lr_subdir_for
from ..models.io import load_sr_generator
from ..models.sampling import make_runner
from ..models.tiling import tiled_super_resolve
from ..metrics.full_reference import MS_SSIM_WEIGHTS, ms_ssim, ms_ssim_min_size
from ..registry import METRICS
from ..core.io import atomic_write_text
from ..core.logs import get_logger
from ..core.progress import progress
from ..metrics.numpy_metrics import bicubic_upscale

log = get_logger("evaluate")


def lesion_boxes(mask: np.ndarray | None, margin: int, minimum: int = 32) -> list[tuple[int, int, int, int]]:
    """Boxes (y0, y1, x0, x1) around each lesion component, grown by `margin` and to at least `minimum` px."""
    if mask is None or not mask.any():
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8))
    boxes = []
    height, width = mask.shape
    for index in range(1, count):
        x, y, w, h = stats[index, :4]
        cy, cx = y + h / 2, x + w / 2
        half_h = max(h / 2 + margin, minimum / 2)
        half_w = max(w / 2 + margin, minimum / 2)
        y0, y1 = int(max(cy - half_h, 0)), int(min(cy + half_h, height))
        x0, x1 = int(max(cx - half_w, 0)), int(min(cx + half_w, width))
        boxes.append((y0, y1, x0, x1))
    return boxes


# Lesion ROIs are at least ROI_SIDE px so that every ROI gets the same ROI_MS_SSIM_SCALES-scale MS-SSIM
# (the full five scales need 161 px, which would bury a calcification in context).
ROI_MS_SSIM_SCALES = 3
ROI_SIDE = ms_ssim_min_size(ROI_MS_SSIM_SCALES)


def _metric(name: str, reference: np.ndarray, test: np.ndarray, data_range: float, roi: bool = False) -> float:
    """One registered metric on a pair of [0, 1] images, scaled to the stored data range."""
    ref = tf.constant(reference[None, ..., None] * data_range, tf.float32)
    out = tf.constant(np.clip(test, 0, 1)[None, ..., None] * data_range, tf.float32)
    try:
        if roi and name == "ms_ssim":
            return float(ms_ssim(ref, out, data_range, power_factors=MS_SSIM_WEIGHTS[:ROI_MS_SSIM_SCALES])[0])
        return float(METRICS.get(name)(ref, out, data_range)[0])
    except ValueError as error:  # an image smaller than the metric's window: reported, not fatal for the batch
        log.warning("%s not computed on a %d×%d %s: %s", name, *reference.shape, "lesion ROI" if roi else "image", error)
        return float("nan")


def evaluate_super_resolution(config: Config, output_dir: Path) -> int:
    """The SR family's `evaluate`: the trained generator against bicubic on [dataset] test_dir.

    Unusable test images are listed and skipped; the good ones are still evaluated, and the exit code is 2.
    """
    evaluation = SREvaluation(config, output_dir)
    evaluation.run()
    for failure in evaluation.failures:
        log.error("FAILED %s", failure)
    if evaluation.failures:
        log.error("%d test image(s) could not be evaluated (listed above); the tables hold the other images.",
                  len(evaluation.failures))
    return 2 if evaluation.failures else 0


class SREvaluation:
    def __init__(self, config: Config, output_dir: Path) -> None:
        self.config = config
        self.output_dir = output_dir
        self.scale = config.model.scale
        self.failures: list[str] = []

    def run(self) -> dict[str, dict[str, float]]:
        cfg = self.config
        runner = make_runner(load_sr_generator(cfg))  # first: a scale the model was not built with is the likelier mistake
        split = load_split(cfg.need("dataset", "test_dir", "evaluate"), self.scale, lr_subdir_for(cfg), cfg.dataset.data_range,
                           failures=self.failures)
        metrics = cfg.eval.metrics
        border = cfg.eval.border_crop
        rows = []
        outputs = []
        for index in progress(range(len(split.hr)), total=len(split.hr), desc="evaluate"):
            lr, hr = split.lr[index], split.hr[index]
            sr = np.clip(tiled_super_resolve(runner, lr, self.scale, cfg.infer.tile_size, cfg.infer.tile_overlap, cfg.infer.tile_batch), 0, 1)
            bicubic = np.clip(bicubic_upscale(lr, self.scale), 0, 1)
            outputs.append(sr)
            row: dict[str, object] = {"image": split.names[index]}
            crop = (slice(border, hr.shape[0] - border or None), slice(border, hr.shape[1] - border or None))
            for name in metrics:
                row[f"{name}_model"] = _metric(name, hr[crop], sr[crop], split.data_range)
                row[f"{name}_bicubic"] = _metric(name, hr[crop], bicubic[crop], split.data_range)
            boxes = lesion_boxes(split.masks[index], cfg.eval.roi_margin, ROI_SIDE)
            row["lesion_rois"] = len(boxes)
            for name in metrics:
                for method, image in (("model", sr), ("bicubic", bicubic)):
                    values = [_metric(name, hr[y0:y1, x0:x1], image[y0:y1, x0:x1], split.data_range, roi=True)
                              for y0, y1, x0, x1 in boxes]
                    row[f"roi_{name}_{method}"] = float(np.nanmean(values)) if values and not np.all(np.isnan(values)) else ""
            rows.append(row)
        summary = self._write_tables(rows, metrics)
        self._write_comparisons(split, outputs)
        log.info("Evaluation of %d images written to %s", len(rows), self.output_dir)
        for name, values in summary.items():
            log.info("  %-14s model %.4f ± %.4f   bicubic %.4f ± %.4f   gain %+.4f", name, values["model_mean"], values["model_std"],
                     values["bicubic_mean"], values["bicubic_std"], values["gain_mean"])
        return summary

    def _write_tables(self, rows: list[dict[str, object]], metrics: list[str]) -> dict[str, dict[str, float]]:
        columns = list(rows[0]) if rows else ["image"]
        atomic_write_text(self.output_dir / "per_image.csv", _csv(rows, columns))
        summary = {}
        for prefix in ("", "roi_"):
            for name in metrics:
                model = np.array([r[f"{prefix}{name}_model"] for r in rows if r[f"{prefix}{name}_model"] != ""], dtype=np.float64)
                bicubic = np.array([r[f"{prefix}{name}_bicubic"] for r in rows if r[f"{prefix}{name}_bicubic"] != ""], dtype=np.float64)
                if model.size == 0:
                    continue
                summary[f"{prefix}{name}"] = {
                    "model_mean": float(np.nanmean(model)), "model_std": float(np.nanstd(model)),
                    "bicubic_mean": float(np.nanmean(bicubic)), "bicubic_std": float(np.nanstd(bicubic)),
                    "gain_mean": float(np.nanmean(model - bicubic)), "gain_std": float(np.nanstd(model - bicubic)),
                    "images": int(model.size),
                }
        table = [{"metric": k, **v} for k, v in summary.items()]
        atomic_write_text(self.output_dir / "evaluation.csv",
                          _csv(table, ["metric", "images", "model_mean", "model_std", "bicubic_mean", "bicubic_std", "gain_mean", "gain_std"]))
        return summary

    def _write_comparisons(self, split: SRSplit, outputs: list[np.ndarray]) -> None:
        for region in tile_regions(split, self.config.eval.comparison_crops):
            full = outputs[region.image]
            name = split.names[region.image]
            title = f"{name}   held-out test image, x{self.scale}   PSNR of each panel against HR"
            sr_tile(self.output_dir / "comparisons" / f"{name}.png", title, split, [region],
                    lambda r, full=full: full[r.y : r.y + r.size, r.x : r.x + r.size])


def _csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


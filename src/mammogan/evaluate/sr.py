"""SR evaluation: the trained generator against bicubic on the test split, where the detail matters.

Every full-reference metric is computed on the whole image, inside lesion ROIs (any lesion, and per
lesion class), and on breast tissue (tiles inside the breast, away from the skin line); inside
calcification ROIs the micro-calcification spots are also compared (metrics/spots.py). Writes
`per_image.csv` (every value for model and bicubic), `evaluation.csv` (mean ± std, the gain over
bicubic and how many images and ROIs) and side-by-side comparison crops.
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
from ..config.schema import PREPARE
from ..data.breast import breast_tissue
from ..data.lesions import LESION_CLASSES
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
from ..metrics.spots import compare_spots, detect_spots, spot_scores

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


# Breast tissue: square tiles of TISSUE_TILE px lying wholly inside the breast eroded by TISSUE_MARGIN px
# (about 3 mm at MIAS's 200 µm), so every windowed metric sees tissue only. The breast is found as `prepare`
# finds it, at its default threshold (prepared images have a black background, so the level hardly matters).
TISSUE_TILE = 64
TISSUE_MARGIN = 16
TISSUE_THRESHOLD = PREPARE.key("crop_threshold").default
SPOT_SCORES = ("recall", "precision", "contrast_ratio")

Box = tuple[int, int, int, int]


def tissue_tiles(tissue: np.ndarray, side: int = TISSUE_TILE) -> list[Box]:
    """Boxes (y0, y1, x0, x1) of the `side`-px grid tiles that lie wholly inside the `tissue` mask."""
    height, width = tissue.shape
    return [(y, y + side, x, x + side) for y in range(0, height - side + 1, side) for x in range(0, width - side + 1, side)
            if tissue[y : y + side, x : x + side].all()]


def _metric(name: str, reference: np.ndarray, test: np.ndarray, data_range: float, roi: bool = False) -> np.ndarray:
    """One registered metric on a stack (N, H, W) of pairs of [0, 1] images, scaled to the stored data range."""
    ref = tf.constant(reference[..., None] * data_range, tf.float32)
    out = tf.constant(np.clip(test, 0, 1)[..., None] * data_range, tf.float32)
    try:
        if roi and name == "ms_ssim":
            return ms_ssim(ref, out, data_range, power_factors=MS_SSIM_WEIGHTS[:ROI_MS_SSIM_SCALES]).numpy()
        return METRICS.get(name)(ref, out, data_range).numpy()
    except ValueError as error:  # an image smaller than the metric's window: reported, not fatal for the batch
        log.warning("%s not computed on a %d×%d %s: %s", name, *reference.shape[1:], "ROI" if roi else "image", error)
        return np.full(len(reference), np.nan)


def _box_mean(name: str, hr: np.ndarray, image: np.ndarray, boxes: list[Box], data_range: float) -> float | str:
    """The mean of a metric over the boxes ("" without any); boxes of one shape are scored as one batch."""
    values = []
    for shape in sorted({(y1 - y0, x1 - x0) for y0, y1, x0, x1 in boxes}):
        chosen = [(slice(y0, y1), slice(x0, x1)) for y0, y1, x0, x1 in boxes if (y1 - y0, x1 - x0) == shape]
        values.extend(_metric(name, np.stack([hr[b] for b in chosen]), np.stack([image[b] for b in chosen]), data_range, roi=True))
    return float(np.nanmean(values)) if values and not np.all(np.isnan(values)) else ""


def region_scores(hr: np.ndarray, outputs: dict[str, np.ndarray], lesion_mask: np.ndarray | None,
                  class_masks: dict[str, np.ndarray | None], metrics: list[str], data_range: float,
                  roi_margin: int) -> dict[str, object]:
    """The per-image columns measured where the detail matters, for each output ("model", "bicubic") against `hr`.

    `roi_<metric>`: inside boxes around each component of `lesion_mask` (any lesion), `<class>_<metric>`:
    the same around each component of that class's mask, `tissue_<metric>`: on the breast-tissue tiles
    (each the mean over the image's ROIs/tiles, "" without any), with their counts; `spots_<score>`: the
    calcification spots of the outputs against HR's, pooled over the calcification ROIs.
    """
    regions = {"roi_": ("lesion_rois", lesion_boxes(lesion_mask, roi_margin, ROI_SIDE))}
    for lesion_class in LESION_CLASSES:
        regions[f"{lesion_class}_"] = (f"{lesion_class}_rois", lesion_boxes(class_masks.get(lesion_class), roi_margin, ROI_SIDE))
    regions["tissue_"] = ("tissue_tiles", tissue_tiles(breast_tissue(hr, TISSUE_THRESHOLD, TISSUE_MARGIN)))
    row: dict[str, object] = {}
    for prefix, (count, boxes) in regions.items():
        row[count] = len(boxes)
        for name in metrics:
            for method, image in outputs.items():
                row[f"{prefix}{name}_{method}"] = _box_mean(name, hr, image, boxes, data_range)
    crops = [(slice(y0, y1), slice(x0, x1)) for y0, y1, x0, x1 in regions["calcification_"][1]]
    reference = [detect_spots(hr[crop]) for crop in crops]
    row["spots_hr"] = sum(len(spots.peaks) for spots in reference)
    for method, image in outputs.items():
        scores = spot_scores([compare_spots(spots, detect_spots(image[crop])) for spots, crop in zip(reference, crops)])
        for name in SPOT_SCORES:
            row[f"spots_{name}_{method}"] = "" if np.isnan(scores[name]) else scores[name]
    return row


def summary_groups(metrics: list[str]) -> list[tuple[str, tuple[str, ...], str | None]]:
    """The summary rows as (column prefix, what is measured, count column), breast tissue and calcifications first:
    the headline of the log, since whole-image numbers are dominated by smooth tissue and background."""
    measured = tuple(metrics)
    return [("tissue_", measured, "tissue_tiles"), ("calcification_", measured, "calcification_rois"),
            ("spots_", SPOT_SCORES, "spots_hr"), ("", measured, None), ("roi_", measured, "lesion_rois"),
            *((f"{c}_", measured, f"{c}_rois") for c in LESION_CLASSES if c != "calcification")]


# What the count column of a summary row counts (lesion ROIs otherwise).
COUNTED = {"tissue_tiles": "tissue tiles", "spots_hr": "HR spots"}


def summarise(rows: list[dict[str, object]], metrics: list[str]) -> dict[str, dict[str, float]]:
    """Per summary row: model and bicubic mean ± std over the images that have a value, the gain, and the counts
    (`images`; `rois`: the ROIs, tissue tiles or HR spots those images hold, as `counted` says)."""
    summary = {}
    for prefix, names, count in summary_groups(metrics):
        for name in names:
            model, bicubic = (np.array([np.nan if r[f"{prefix}{name}_{m}"] == "" else r[f"{prefix}{name}_{m}"] for r in rows],
                                       dtype=np.float64) for m in ("model", "bicubic"))
            present = ~np.isnan(model)
            if not present.any():
                continue
            summary[f"{prefix}{name}"] = {
                "model_mean": float(np.nanmean(model)), "model_std": float(np.nanstd(model)),
                "bicubic_mean": float(np.nanmean(bicubic)), "bicubic_std": float(np.nanstd(bicubic)),
                "gain_mean": float(np.nanmean(model - bicubic)), "gain_std": float(np.nanstd(model - bicubic)),
                "gain_median": float(np.nanmedian(model - bicubic)),
                "images": int(present.sum()),
                "rois": sum(int(r[count]) for r, keep in zip(rows, present) if keep) if count else "",
                "counted": COUNTED.get(count, "ROIs") if count else "",
            }
    return summary


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
                           failures=self.failures, class_masks=LESION_CLASSES)
        metrics = cfg.eval.metrics
        border = cfg.eval.border_crop
        rows = []
        outputs = []
        for index in progress(range(len(split.hr)), total=len(split.hr), desc="evaluate"):
            lr, hr = split.lr[index], split.hr[index]
            sr = np.clip(tiled_super_resolve(runner, lr, self.scale, cfg.infer.tile_size, cfg.infer.tile_overlap, cfg.infer.tile_batch), 0, 1)
            bicubic = np.clip(bicubic_upscale(lr, self.scale), 0, 1)
            outputs.append(sr)
            methods = {"model": sr, "bicubic": bicubic}
            row: dict[str, object] = {"image": split.names[index]}
            crop = (slice(border, hr.shape[0] - border or None), slice(border, hr.shape[1] - border or None))
            for name in metrics:
                for method, image in methods.items():
                    row[f"{name}_{method}"] = float(_metric(name, hr[crop][None], image[crop][None], split.data_range)[0])
            class_masks = {c: split.class_masks[c][index] for c in LESION_CLASSES}
            row.update(region_scores(hr, methods, split.masks[index], class_masks, metrics, split.data_range, cfg.eval.roi_margin))
            rows.append(row)
        summary = self._write_tables(rows, metrics)
        self._write_comparisons(split, outputs)
        log.info("Evaluation of %d images written to %s", len(rows), self.output_dir)
        for name, values in summary.items():
            log.info("  %-26s model %.4f ± %.4f   bicubic %.4f ± %.4f   gain %+.4f (median %+.4f)   (%d images%s)", name,
                     values["model_mean"], values["model_std"], values["bicubic_mean"], values["bicubic_std"], values["gain_mean"],
                     values["gain_median"], values["images"],
                     f", {values['rois']} {values['counted']}" if values["counted"] else "")
        return summary

    def _write_tables(self, rows: list[dict[str, object]], metrics: list[str]) -> dict[str, dict[str, float]]:
        columns = list(rows[0]) if rows else ["image"]
        atomic_write_text(self.output_dir / "per_image.csv", _csv(rows, columns))
        summary = summarise(rows, metrics)
        table = [{"metric": k, **v} for k, v in summary.items()]
        atomic_write_text(self.output_dir / "evaluation.csv",
                          _csv(table, ["metric", "images", "rois", "model_mean", "model_std", "bicubic_mean", "bicubic_std", "gain_mean", "gain_std",
                                  "gain_median", "counted"]))
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


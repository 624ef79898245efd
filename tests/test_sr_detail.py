"""Detail where it matters: per-class and breast-tissue SR metrics, the calcification spot detector, class-weighted loss."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from mammogan.cli import main
from mammogan.data.breast import breast_tissue
from mammogan.data.degradation import DegradationSpec
from mammogan.data.images import write_png
from mammogan.data.sr_dataset import read_pair
from mammogan.evaluate.sr import (ROI_SIDE, TISSUE_MARGIN, TISSUE_THRESHOLD, TISSUE_TILE, lesion_boxes, region_scores,
                                  summarise, tissue_tiles)
from mammogan.losses import pixel_loss_per_example
from mammogan.losses.pixel import mse
from mammogan.metrics.spots import Spots, compare_spots, detect_spots, spot_scores
from mammogan.registry import GENERATORS

SIZE = 256
MARGIN = 16


def _disk(center: tuple[int, int], radius: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.circle(mask, center[::-1], radius, 1, -1)
    return mask.astype(np.float32)


@pytest.fixture(scope="module")
def constructed():
    """HR: a textured half-disc breast on black; bicubic: HR + 0.02 everywhere; "SR": bicubic except HR + 0.01
    inside the calcification ROI (placed in the background), so only calcification numbers differ."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    breast = (xs / 230.0) ** 2 + ((ys - SIZE / 2) / 125.0) ** 2 <= 1.0
    texture = 0.5 + 0.2 * np.sin(xs / 7.0) * np.cos(ys / 9.0)
    hr = np.where(breast, texture, 0.0).astype(np.float32)
    calcification, mass = _disk((240, 240), 3), _disk((128, 60), 10)
    (box,) = lesion_boxes(calcification, MARGIN, ROI_SIDE)
    bicubic = hr + 0.02
    sr = bicubic.copy()
    sr[box[0] : box[1], box[2] : box[3]] = hr[box[0] : box[1], box[2] : box[3]] + 0.01
    masks = {"calcification": calcification, "mass": mass, "other": None}
    row = region_scores(hr, {"model": sr, "bicubic": bicubic}, np.maximum(calcification, mass), masks, ["psnr", "ssim"], 255.0, MARGIN)
    return hr, row


def test_calcification_gain_is_the_known_error_ratio_and_elsewhere_zero(constructed):
    _, row = constructed
    assert row["calcification_rois"] == 1 and row["mass_rois"] == 1 and row["other_rois"] == 0 and row["lesion_rois"] == 2
    gain = 20 * np.log10(0.02 / 0.01)  # the error halves inside the calcification ROI
    assert row["calcification_psnr_model"] - row["calcification_psnr_bicubic"] == pytest.approx(gain, abs=1e-3)
    assert row["calcification_psnr_bicubic"] == pytest.approx(20 * np.log10(1 / 0.02), abs=1e-3)
    assert row["mass_psnr_model"] == row["mass_psnr_bicubic"]
    assert row["tissue_tiles"] > 0 and row["tissue_psnr_model"] == row["tissue_psnr_bicubic"]
    assert row["tissue_psnr_bicubic"] == pytest.approx(20 * np.log10(1 / 0.02), abs=1e-3)
    # The any-lesion ROIs average the calcification box (gain 6 dB) with the mass box (gain 0).
    assert row["roi_psnr_model"] - row["roi_psnr_bicubic"] == pytest.approx(gain / 2, abs=1e-3)
    assert row["other_psnr_model"] == "" and row["other_psnr_bicubic"] == ""


def test_summary_rows_carry_the_gain_and_counts_tissue_and_calcification_first(constructed):
    _, row = constructed
    summary = summarise([{"image": "a", "psnr_model": 30.0, "psnr_bicubic": 29.0, "ssim_model": 0.9, "ssim_bicubic": 0.8, **row}],
                        ["psnr", "ssim"])
    assert list(summary)[:2] == ["tissue_psnr", "tissue_ssim"] and list(summary)[2:4] == ["calcification_psnr", "calcification_ssim"]
    assert summary["calcification_psnr"]["gain_mean"] == pytest.approx(20 * np.log10(2), abs=1e-3)
    assert summary["calcification_psnr"]["rois"] == 1 and summary["calcification_psnr"]["images"] == 1
    assert summary["tissue_psnr"]["rois"] == row["tissue_tiles"] and summary["tissue_psnr"]["gain_mean"] == 0
    assert summary["psnr"]["gain_mean"] == pytest.approx(1.0) and summary["psnr"]["rois"] == ""
    assert [summary[m]["counted"] for m in ("calcification_psnr", "tissue_psnr", "psnr")] == ["ROIs", "tissue tiles", ""]
    assert summary["calcification_psnr"]["gain_median"] == summary["calcification_psnr"]["gain_mean"]  # one image
    assert "other_psnr" not in summary  # no ROI of that class in any image: no row


def test_tissue_keeps_away_from_the_skin_line_and_tiles_lie_inside(constructed):
    hr, _ = constructed
    tissue = breast_tissue(hr, TISSUE_THRESHOLD, TISSUE_MARGIN)
    background = hr == 0
    distance = ndimage.distance_transform_edt(np.pad(~background, 1))[1:-1, 1:-1]
    assert tissue.any() and distance[tissue].min() > TISSUE_MARGIN - 1
    for y0, y1, x0, x1 in tissue_tiles(tissue):
        assert (y1 - y0, x1 - x0) == (TISSUE_TILE, TISSUE_TILE) and tissue[y0:y1, x0:x1].all()


def test_a_breast_too_small_for_the_margin_has_no_tissue_value():
    hr = (_disk((128, 128), 20) * 0.6).astype(np.float32)
    row = region_scores(hr, {"model": hr, "bicubic": hr}, None, {}, ["psnr"], 255.0, MARGIN)
    assert row["tissue_tiles"] == 0 and row["tissue_psnr_model"] == ""
    assert not breast_tissue(np.zeros((64, 64), np.float32), TISSUE_THRESHOLD, TISSUE_MARGIN).any()  # no breast at all


CENTRES = np.array([(20, 20), (20, 70), (70, 20), (70, 70), (45, 45)], dtype=np.float64)


def _spots(sigma: float, amplitude: float, side: int = 96) -> np.ndarray:
    ys, xs = np.mgrid[0:side, 0:side]
    return sum(amplitude * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2)) for cy, cx in CENTRES)


def _noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (96, 96))


TRUTH = Spots(CENTRES, np.ones(len(CENTRES)), np.ones(len(CENTRES)))


@pytest.mark.parametrize("sigma", [1.5, 2.0])
def test_spots_at_five_noise_sigmas_are_all_found_and_nothing_else(sigma):
    found = detect_spots(_noise() + _spots(sigma, 5.0))
    match = compare_spots(TRUTH, found)
    assert (match.reference, match.found, match.matched) == (5, 5, 5)
    assert np.all((found.diameters >= 1.5) & (found.diameters <= 5.0))


def test_faint_and_large_spots_are_not_found():
    assert len(detect_spots(_noise() + _spots(1.5, 1.5)).peaks) == 0  # below k·σ of the background
    assert compare_spots(TRUTH, detect_spots(_noise() + _spots(6.0, 20.0))).matched == 0  # masses, not micro-calcifications


def test_blurred_spots_keep_recall_but_lose_contrast():
    noise, spots = _noise(), _spots(1.5, 8.0)
    reference = detect_spots(noise + spots)
    same = spot_scores([compare_spots(reference, detect_spots(noise + spots))])
    assert same == {"recall": 1.0, "precision": 1.0, "contrast_ratio": 1.0}
    blurred = spot_scores([compare_spots(reference, detect_spots(noise + ndimage.gaussian_filter(spots, 1.0)))])
    assert blurred["recall"] == 1.0 and blurred["contrast_ratio"] < 0.9
    assert np.isnan(spot_scores([compare_spots(Spots(np.zeros((0, 2)), np.zeros(0), np.zeros(0)), reference)])["recall"])


def test_pooled_spot_scores_count_over_rois():
    reference = detect_spots(_noise() + _spots(2.0, 6.0))
    empty = detect_spots(_noise(1))
    scores = spot_scores([compare_spots(reference, reference), compare_spots(reference, empty)])
    assert scores["recall"] == pytest.approx(5 / 10) and scores["precision"] == pytest.approx(5 / (5 + len(empty.peaks)))


@pytest.fixture
def class_split(tmp_path: Path) -> Path:
    """A 4×4 split image with a calcification pixel, a mass pixel and the any-lesion mask of both."""
    image = np.full((4, 4), 100, np.uint8)
    calcification, mass = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    calcification[0, 0], mass[3, 3] = 255, 255
    for subdir, array in (("images", image), ("masks", np.maximum(calcification, mass)),
                          ("masks_calcification", calcification), ("masks_mass", mass)):
        write_png(tmp_path / subdir / "a.png", array)
    return tmp_path


def test_class_restricted_mask_weights_only_that_class(class_split):
    def mask(classes: tuple[str, ...]) -> np.ndarray:
        pair = read_pair(class_split / "images" / "a.png", class_split, 2, "", DegradationSpec("bicubic", 2), mask_classes=classes)
        return (pair.mask > 0).astype(np.float32)

    assert mask(()).sum() == 2 and mask(("calcification",))[0, 0] == 1 and mask(("calcification",)).sum() == 1
    assert np.array_equal(mask(("calcification", "mass")), mask(()))
    no_file = read_pair(class_split / "images" / "a.png", class_split, 2, "", DegradationSpec("bicubic", 2), mask_classes=("other",))
    assert no_file.mask is None  # no masks_other folder: no lesion to weight
    target = np.zeros((1, 4, 4, 1), np.float32)
    output = np.zeros((1, 4, 4, 1), np.float32)
    output[0, 0, 0, 0], output[0, 3, 3, 0], output[0, 1, 1, 0] = 1.0, 2.0, 3.0  # errors² 1, 4, 9 (calcification, mass, neither)
    weighted = pixel_loss_per_example(mse, tf.constant(target), tf.constant(output), tf.constant(mask(("calcification",))[None, ..., None]), 5.0)
    # Weights: 5 on the calcification pixel, 1 on the other 15: (5·1 + 4 + 9) / (5 + 15).
    assert float(weighted[0]) == pytest.approx((5 * 1 + 4 + 9) / 20)
    both = pixel_loss_per_example(mse, tf.constant(target), tf.constant(output), tf.constant(mask(())[None, ..., None]), 5.0)
    assert float(both[0]) == pytest.approx((5 * 1 + 5 * 4 + 9) / 24)


def test_lesion_weight_classes_is_read_by_srgan_only(tmp_path: Path):
    from mammogan.config import load_config
    from mammogan.errors import ConfigError

    sr = tmp_path / "sr.config"
    sr.write_text('[model]\ntask = "srgan"\n[train]\nlesion_weight_classes = ["calcification"]\n')
    assert load_config(sr).train.lesion_weight_classes == ["calcification"]
    dcgan = tmp_path / "dcgan.config"
    dcgan.write_text('[model]\ntask = "dcgan"\n[train]\nlesion_weight_classes = ["calcification"]\n')
    with pytest.raises(ConfigError, match="lesion_weight_classes"):
        load_config(dcgan)
    wrong = tmp_path / "wrong.config"
    wrong.write_text('[model]\ntask = "srgan"\n[train]\nlesion_weight_classes = ["cyst"]\n')
    with pytest.raises(ConfigError, match="lesion_weight_classes"):
        load_config(wrong)


SPECKS = [(0, 0), (0, 12), (12, 0), (12, 12), (6, 6)]  # offsets (px) of five synthetic micro-calcifications


@pytest.fixture
def split_with_calcifications(tmp_path: Path, prepared_sample: Path) -> Path:
    """The prepared train split (it has masses, no calcification) with five bright specks drawn into one
    mass and that mass relabelled as a calcification; LR is degraded on the fly from the edited HR."""
    split = tmp_path / "split"
    for subdir in ("images", "masks", "masks_calcification", "masks_mass", "masks_other"):
        shutil.copytree(prepared_sample / "train" / subdir, split / subdir)
    name = next(p.name for p in sorted((split / "masks_mass").glob("*.png")) if cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).any())
    mass = cv2.imread(str(split / "masks_mass" / name), cv2.IMREAD_GRAYSCALE)
    cy, cx = (int(v) for v in np.argwhere(mass > 0).mean(axis=0))
    image = cv2.imread(str(split / "images" / name), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    for dy, dx in SPECKS:
        image += 40 * np.exp(-((ys - cy - dy) ** 2 + (xs - cx - dx) ** 2) / (2 * 1.5**2))
    write_png(split / "images" / name, np.clip(image, 0, 255).astype(np.uint8))
    write_png(split / "masks_calcification" / name, mass)
    write_png(split / "masks_mass" / name, np.zeros_like(mass))
    return split


def test_evaluate_writes_class_tissue_and_spot_rows(tmp_path: Path, split_with_calcifications: Path):
    """End to end, with an untrained generator (exactly its bicubic skip): the new rows exist, counted right, gains ~0."""
    split = split_with_calcifications
    project = tmp_path / "SR"
    generator = GENERATORS.get("srresnet")(scale=2, filters=8, blocks=1, global_skip="bicubic")
    (project / "output" / "models" / "best").mkdir(parents=True)
    generator.save(project / "output" / "models" / "best" / "generator.keras")
    config = project / "train_eval_infer.config"
    config.write_text('[model]\ntask = "srgan"\ngenerator = "srresnet"\nscale = 2\n'
                      f'[dataset]\ntrain_dir = "{split}"\nvalid_dir = "{split}"\ntest_dir = "{split}"\nlr_subdir = ""\n'
                      '[eval]\nmetrics = ["psnr"]\ncomparison_crops = 0\n[infer]\ntile_size = 128\ntile_overlap = 16\n')
    assert main(["evaluate", str(config)]) == 0
    folder = project / "output" / "evaluation"
    with (folder / "evaluation.csv").open(newline="") as handle:
        summary = {r["metric"]: r for r in csv.DictReader(handle)}
    with (folder / "per_image.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(summary)[:2] == ["tissue_psnr", "calcification_psnr"]
    assert {"psnr", "roi_psnr", "mass_psnr", "spots_recall", "spots_precision", "spots_contrast_ratio"} <= set(summary)
    for name in ("calcification", "mass"):
        masks = [cv2.imread(str(split / f"masks_{name}" / f"{r['image']}.png"), cv2.IMREAD_GRAYSCALE) for r in rows]
        assert int(summary[f"{name}_psnr"]["rois"]) == sum(len(lesion_boxes(m, 16, ROI_SIDE)) for m in masks) > 0
        assert int(summary[f"{name}_psnr"]["images"]) == sum(int(r[f"{name}_rois"]) > 0 for r in rows)
    assert summary["calcification_psnr"]["images"] == "1" and int(summary["spots_recall"]["rois"]) >= len(SPECKS)
    assert summary["spots_recall"]["counted"] == "HR spots" and summary["calcification_psnr"]["counted"] == "ROIs"
    assert int(summary["tissue_psnr"]["images"]) == len(rows) and int(summary["tissue_psnr"]["rois"]) >= len(rows)
    for metric in ("tissue_psnr", "calcification_psnr", "mass_psnr", "spots_recall", "spots_contrast_ratio"):
        assert abs(float(summary[metric]["gain_mean"])) < 0.01
    assert 0 < float(summary["spots_contrast_ratio"]["bicubic_mean"]) < 1  # bicubic ×2 dims the specks
    assert {"tissue_psnr_model", "calcification_psnr_bicubic", "spots_recall_model", "spots_hr", "tissue_tiles"} <= set(rows[0])

"""Offline augmentation (`mammogan augment`, [generator]): alignment, bit depth, determinism, splits, errors."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from mammogan.augment.generator import run_augment
from mammogan.augment.transforms import Border, Pair, apply_steps
from mammogan.cli import main
from mammogan.config.loader import load_config
from mammogan.config.types import toml_literal
from mammogan.data.degradation import DegradationSpec, degrade
from mammogan.data.images import read_image, read_mask, write_png
from mammogan.errors import ConfigError
from mammogan.registry import AUGMENTATIONS
from mammogan.core.logs import close_log_files

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LABELS = (64, 128, 192)
LR_SPEC = DegradationSpec("gaussian", 2, 0.0, 0.01)
LR_SEED = 5

# Every augmentation off; each test turns on what it checks.
OFF = {"hflip": False, "vflip": False, "rotation_angles": [], "shrink_ratios": [], "shear_factors": [], "elastic": [],
       "grid_distortion": [], "barrel_amounts": [], "pincushion_amounts": []}

# One config per registered augmentation, with parameters strong enough to move the blobs visibly.
CASES = {
    "hflip": {"hflip": True},
    "vflip": {"vflip": True},
    "rotation": {"rotation_angles": [20.0, 90.0, 180.0]},
    "shrink": {"shrink_ratios": [0.7]},
    "shear": {"shear_factors": [[0.2, 0.1]]},
    "elastic": {"elastic": [[6.0, 16.0]]},
    "grid": {"grid_distortion": [[0.4, 4.0]]},
    "barrel": {"barrel_centres": [[0.4, 0.5], [0.6, 0.4]], "barrel_radius": 0.45, "barrel_amounts": [0.5]},
    "pincushion": {"pincushion_centres": [[0.5, 0.5]], "pincushion_radius": 0.45, "pincushion_amounts": [0.5]},
    "gamma": {"gamma": [0.6]},
    "contrast": {"contrast": [1.5]},
    "brightness": {"brightness": [0.1]},
    "noise": {"noise": [0.02]},
}
IMAGE_ONLY = ("gamma", "contrast", "brightness", "noise")


@pytest.fixture(autouse=True)
def _close_logs() -> Iterator[None]:
    """run_augment logs into each output folder; close those files after every test."""
    yield
    close_log_files()


# --- synthetic datasets ---------------------------------------------------------------------------


def blob_pair(seed: int, height: int, width: int, dtype: type) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An image whose bright blobs are exactly its lesion mask, plus a 3-label tissue map."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    background = 0.06 + 0.2 * xx / width + 0.04 * np.sin(yy / 6.0) * np.cos(xx / 4.0) + 0.03 * rng.random((height, width))
    mask = np.zeros((height, width), np.uint8)
    for _ in range(3):
        centre = (int(rng.uniform(0.3, 0.7) * width), int(rng.uniform(0.3, 0.7) * height))
        axes = (int(rng.uniform(14, 24)), int(rng.uniform(14, 24)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 255, -1)
    blobs = 0.82 + 0.06 * np.sin(xx / 3.0 + yy / 5.0)
    top = np.iinfo(dtype).max
    image = np.round(np.where(mask > 0, blobs, background) * top).astype(dtype)
    tissue = np.select([xx < width / 3, xx < 2 * width / 3], [LABELS[0], LABELS[1]], LABELS[2]).astype(np.uint8)
    return image, mask, tissue


def make_dataset(root: Path, counts: dict[str, int], height: int = 256, width: int = 192, dtype: type = np.uint16,
                 low_res: bool = False) -> Path:
    """A prepared-style dataset: {split}/{images,masks,masks_tissue[,lr_x2]}/<id>.png (+ manifest.json)."""
    index = 0
    for split, count in counts.items():
        for _ in range(count):
            name = f"img{index:03d}.png"
            image, mask, tissue = blob_pair(index, height, width, dtype)
            write_png(root / split / "images" / name, image)
            write_png(root / split / "masks" / name, mask)
            write_png(root / split / "masks_tissue" / name, tissue)
            if low_res:
                write_png(root / split / "lr_x2" / name, degrade(image, LR_SPEC, LR_SEED))
            index += 1
    manifest = {"bit_depth": 8 * np.dtype(dtype).itemsize, "splits": {s: [] for s in counts}}
    if low_res:
        manifest["sr"] = {"x2": {"lr_subdir": "lr_x2", "degradation": LR_SPEC.as_dict(), "seed": LR_SEED}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def write_config(path: Path, dataset: Path, output: Path, **keys: object) -> Path:
    values = {"input_dir": dataset.as_posix(), "output_dir": output.as_posix(), **OFF, **keys}
    path.write_text("[generator]\n" + "".join(f"{k} = {toml_literal(v)}\n" for k, v in values.items()))
    return path


def augment(tmp_path: Path, dataset: Path, name: str = "out", **keys: object) -> tuple[int, Path]:
    output = tmp_path / name
    config = load_config(write_config(tmp_path / f"{name}.config", dataset, output, **keys))
    return run_augment(config), output


def manifest_rows(output: Path) -> list[dict[str, str]]:
    with (output / "augmentation.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def isodata_threshold(image: np.ndarray) -> float:
    """A two-class threshold from the image alone (the mask is not consulted); border fill (0) left out."""
    values = image[image > 0].astype(np.float64)
    threshold = values.mean()
    for _ in range(50):
        threshold = (values[values > threshold].mean() + values[values <= threshold].mean()) / 2
    return threshold


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(np.logical_or(a, b).sum(), 1))


def tree_digest(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


# --- alignment and bit depth, per augmentation ------------------------------------------------


def test_every_registered_augmentation_has_a_case() -> None:
    assert sorted(CASES) == AUGMENTATIONS.names()


@pytest.mark.parametrize("name", sorted(CASES))
def test_augmentation_keeps_masks_on_the_blobs(tmp_path: Path, name: str) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 2})
    code, output = augment(tmp_path, dataset, **CASES[name])
    assert code == 0
    rows = [r for r in manifest_rows(output) if r["transform"] != "original"]
    variants = {"rotation": 3, "barrel": 2}.get(name, 1)
    assert len(rows) == 2 * variants and {r["transform"] for r in rows} == {name}
    for row in rows:
        image = read_image(output / "train" / "images" / row["output"])
        mask = read_mask(output / "train" / "masks" / row["output"])
        tissue = read_mask(output / "train" / "masks_tissue" / row["output"])
        assert image.dtype == np.uint16 and len(np.unique(image)) > 256, row["output"]
        assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255
        assert set(np.unique(tissue)) <= {0, *LABELS}
        score = iou(image > isodata_threshold(image), mask > 0)
        assert score >= 0.95, f"{row['output']}: IoU {score:.3f}"
        if name in IMAGE_ONLY:
            original = output / "train" / "masks" / f"{row['source']}.png"
            assert np.array_equal(mask, read_mask(original))


def test_output_names_encode_source_and_parameters(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 1})
    code, output = augment(tmp_path, dataset, rotation_angles=[20.0, -7.5], barrel_centres=[[0.3, 0.3], [0.7, 0.3]],
                           barrel_radius=0.3, barrel_amounts=[0.3], chains=[["rotation", "noise"]], noise=[0.01])
    assert code == 0
    names = sorted(p.name for p in (output / "train" / "images").iterdir())
    assert names == sorted(["img000.png", "img000_rot20.png", "img000_rot-7.5.png", "img000_barrel_c1_r0.3_a0.3.png",
                            "img000_barrel_c2_r0.3_a0.3.png", "img000_noise0.01.png", "img000_rot20+noise0.01.png",
                            "img000_rot-7.5+noise0.01.png"])
    for folder in ("masks", "masks_tissue"):
        assert sorted(p.name for p in (output / "train" / folder).iterdir()) == names


# --- determinism, manifest, splits, SR pairs ------------------------------------------------------


def test_same_config_gives_byte_identical_outputs(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 3, "valid": 1}, height=96, width=80, dtype=np.uint8, low_res=True)
    recipe = {"hflip": True, "rotation_angles": [33.0], "elastic": [[4.0, 10.0]], "grid_distortion": [[0.3, 3.0]],
              "noise": [0.02], "chains": [["hflip", "elastic"]]}
    code_1, one = augment(tmp_path, dataset, "one", workers=1, **recipe)
    code_2, two = augment(tmp_path, dataset, "two", workers=2, **recipe)
    assert code_1 == code_2 == 0
    skip = ("augment.log", "resolved.config")
    assert tree_digest(one, skip) == tree_digest(two, skip)
    assert read_image(one / "train" / "images" / "img000_elastic_a4_s10.png").dtype == np.uint8

    code_3, other = augment(tmp_path, dataset, "other", seed=7, **recipe)
    assert code_3 == 0
    same = lambda name: (one / "train" / "images" / name).read_bytes() == (other / "train" / "images" / name).read_bytes()
    assert same("img000_hflip.png") and same("img000_rot33.png")  # no randomness: the seed does not matter
    assert not same("img000_elastic_a4_s10.png") and not same("img000_noise0.02.png")


def test_manifest_reproduces_every_output(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 2})
    code, output = augment(tmp_path, dataset, rotation_angles=[15.0], elastic=[[5.0, 12.0]], noise=[0.03],
                           chains=[["rotation", "elastic", "noise"]], border_mode="reflect")
    assert code == 0
    rows = manifest_rows(output)
    assert len(rows) == 2 * 5 and list(rows[0]) == ["split", "source", "output", "transform", "parameters", "seed"]
    for row in rows:
        if row["transform"] == "original":
            assert row["parameters"] == "[]" and row["seed"] == ""
            continue
        source = dataset / "train"
        pair = Pair(read_image(source / "images" / f"{row['source']}.png"),
                    (read_mask(source / "masks" / f"{row['source']}.png"),))
        steps = list(zip(row["transform"].split("+"), json.loads(row["parameters"])))
        expected = apply_steps(pair, steps, int(row["seed"]), Border("reflect", 0.0))
        assert np.array_equal(read_image(output / "train" / "images" / row["output"]), expected.image)
        assert np.array_equal(read_mask(output / "train" / "masks" / row["output"]), expected.masks[0])
    chained = [r for r in rows if r["transform"] == "rotation+elastic+noise"]
    assert [json.loads(r["parameters"]) for r in chained] == [[{"angle": 15.0}, {"alpha": 5.0, "sigma": 12.0}, {"std": 0.03}]] * 2


def test_only_train_is_augmented_and_other_splits_are_untouched(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 2, "valid": 2, "test": 2}, low_res=True)
    before = tree_digest(dataset)
    code, output = augment(tmp_path, dataset, hflip=True, elastic=[[4.0, 10.0]])
    assert code == 0
    assert tree_digest(dataset) == before  # the input is never written
    for split in ("valid", "test"):
        assert tree_digest(output / split) == tree_digest(dataset / split)
    train = tree_digest(output / "train")
    for relative, digest in tree_digest(dataset / "train").items():
        assert train[relative] == digest  # originals copied byte for byte
    assert len(train) == 4 * 2 * 3  # 4 folders × 2 sources × (original + 2 outputs)
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["splits"]["train"] == ["img000", "img000_elastic_a4_s10", "img000_hflip",
                                           "img001", "img001_elastic_a4_s10", "img001_hflip"]
    assert manifest["sr"]["x2"]["lr_subdir"] == "lr_x2"


def test_low_resolution_is_regenerated_from_the_augmented_image(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 1}, low_res=True)
    code, output = augment(tmp_path, dataset, rotation_angles=[30.0])
    assert code == 0
    high = read_image(output / "train" / "images" / "img000_rot30.png")
    low = read_image(output / "train" / "lr_x2" / "img000_rot30.png")
    assert low.dtype == np.uint16 and low.shape == (high.shape[0] // 2, high.shape[1] // 2)
    assert np.array_equal(low, degrade(high, LR_SPEC, LR_SEED))


def test_files_are_paired_by_name_and_bad_sources_are_reported(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 3})
    (dataset / "train" / "masks_tissue" / "img001.png").unlink()  # img001 loses a partner
    write_png(dataset / "train" / "masks" / "aaa_orphan.png", np.zeros((256, 192), np.uint8))  # sorts first
    code, output = augment(tmp_path, dataset, hflip=True)
    assert code == 2  # the batch finishes, then reports the bad source
    assert sorted(p.name for p in (output / "train" / "images").iterdir()) == [
        "img000.png", "img000_hflip.png", "img002.png", "img002_hflip.png"]
    for name in ("img000_hflip.png", "img002_hflip.png"):
        image, mask = read_image(output / "train" / "images" / name), read_mask(output / "train" / "masks" / name)
        assert iou(image > isodata_threshold(image), mask > 0) >= 0.95
    assert {r["source"] for r in manifest_rows(output)} == {"img000", "img002"}


# --- configuration errors -----------------------------------------------------------------------


@pytest.mark.parametrize(("keys", "key", "words"), [
    ({"barrel_radius": -0.3, "barrel_amounts": [0.3]}, "barrel_radius", ">= 0"),
    ({"pincushion_radius": 0.0, "pincushion_amounts": [0.3]}, "pincushion_radius", "radius must be > 0"),
    ({"chains": [["hflip", "wrap"]], "hflip": True}, "chains", "unknown augmentation 'wrap'"),
    ({"chains": [["hflip", "elastic"]], "hflip": True}, "chains", "set [generator] elastic"),
    ({"grid_distortion": [[0.6, 4.0]]}, "grid_distortion", "strength must be < 0.5"),
    ({"elastic": [[4.0, 10.0, 1.0]]}, "elastic", "expected [alpha, sigma]"),
    ({"rotation_angles": [90.0, 90.0]}, "rotation_angles", "same variant twice"),
    ({"splits": ["test"]}, "splits", "'train', 'valid'"),
])
def test_bad_parameters_name_the_section_and_key(tmp_path: Path, keys: dict, key: str, words: str) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 1})
    with pytest.raises(ConfigError) as caught:
        augment(tmp_path, dataset, **keys)
    message = str(caught.value)
    assert f"[generator] {key}" in message and words in message, message
    assert not (tmp_path / "out").exists()  # nothing is written before the config is known to be good


def test_cli_exits_2_on_user_errors(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 1})
    inside = write_config(tmp_path / "inside.config", dataset, dataset / "augmented", hflip=True)
    assert main(["augment", str(inside)]) == 2
    assert not (dataset / "augmented").exists()


def test_generator_script_runs_from_any_folder(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "data", {"train": 1, "test": 1})
    config = write_config(tmp_path / "gen.config", dataset, tmp_path / "out", vflip=True)
    # -S without site: mammogan's editable install is invisible, so the script must find src/ itself.
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    done = subprocess.run([sys.executable, "-S", str(REPO / "generator" / "ImageMaskDatasetGenerator.py"), config.name],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "train" / "images" / "img000_vflip.png").is_file()
    assert (tmp_path / "out" / "test" / "images" / "img001.png").is_file()


# --- real data ----------------------------------------------------------------------------------


def _shared(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"shared real data not available at {path}")
    return path


def test_real_ddsm_pairs_stay_aligned(tmp_path: Path) -> None:
    source = _shared("ddsm-tissue") / "train_valid"
    dataset = tmp_path / "data"
    thresholds = {}
    for image_path in sorted((source / "fgt_seg").glob("*.png"))[:2]:
        image = read_image(image_path)
        # A mask cut from the real image itself (its brightest fifth: irregular dense tissue), so that
        # after augmentation the image, thresholded again, must fall exactly on the augmented mask.
        thresholds[image_path.stem] = threshold = float(np.percentile(image[image > 0], 80))
        write_png(dataset / "train" / "images" / image_path.name, image)
        write_png(dataset / "train" / "masks" / image_path.name, ((image > threshold) * 255).astype(np.uint8))
        write_png(dataset / "train" / "masks_tissue" / image_path.name,
                  read_mask(source / "fgt_seg_labels" / f"{image_path.stem}_LI.png"))
    code, output = augment(tmp_path, dataset, hflip=True, rotation_angles=[20.0], shear_factors=[[0.1, 0.0]],
                           elastic=[[8.0, 32.0]], grid_distortion=[[0.3, 5.0]], barrel_amounts=[0.3], pincushion_amounts=[0.3])
    assert code == 0
    rows = [r for r in manifest_rows(output) if r["transform"] != "original"]
    assert len(rows) == 2 * 7
    for row in rows:
        image = read_image(output / "train" / "images" / row["output"])
        mask = read_mask(output / "train" / "masks" / row["output"])
        labels = read_mask(output / "train" / "masks_tissue" / row["output"])
        assert image.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        assert set(np.unique(labels)) <= {0, 64, 128, 192, 255}  # the 4 tissue labels (+ 0 where the border was filled)
        score = iou(image > thresholds[row["source"]], mask > 0)
        assert score >= 0.95, f"{row['output']}: IoU {score:.3f}"


def test_real_nyu_16bit_pair_keeps_depth_and_lesion(tmp_path: Path) -> None:
    gmic = _shared("nyu/GMIC")
    dataset = tmp_path / "data"
    image = read_image(gmic / "cropped_images_commit_febe243" / "0_R-CC.png")
    mask = read_mask(gmic / "segmentation" / "0_R-CC_benign.png")
    write_png(dataset / "train" / "images" / "0_R-CC.png", image)
    write_png(dataset / "train" / "masks" / "0_R-CC.png", mask)
    code, output = augment(tmp_path, dataset, workers=2, rotation_angles=[15.0], elastic=[[10.0, 40.0]],
                           barrel_centres=[[0.5, 0.5]], barrel_amounts=[0.3], gamma=[0.8])
    assert code == 0
    inside = float(image[mask > 0].mean())
    for row in manifest_rows(output)[1:]:
        augmented = read_image(output / "train" / "images" / row["output"])
        lesion = read_mask(output / "train" / "masks" / row["output"])
        assert augmented.dtype == np.uint16 and len(np.unique(augmented)) > 256
        assert set(np.unique(lesion)) == {0, 255}
        if row["transform"] != "gamma":  # the lesion's pixels moved with it: same intensities under the mask
            assert abs(float(augmented[lesion > 0].mean()) - inside) < 0.02 * inside, row["output"]
        if row["transform"] == "rotation":  # rigid: the lesion keeps its area
            assert abs(int((lesion > 0).sum()) / int((mask > 0).sum()) - 1) < 0.01

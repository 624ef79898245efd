"""`mammogan prepare` behaviour common to every source: MIAS geometry, bit depth, idempotency and atomic
outputs, patient-level splits, plain-image inputs, SR degradations and fixed-size SR pairs.

Runs on the bundled mini-MIAS sample (sample/mias, 512x512 copies) where possible, and on the real files
in ../shared/data (full-size MIAS with Info.txt, NYU 16-bit PNGs) otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mammogan.data.degradation import DegradationSpec, degrade, imresize
from mammogan.data.images import read_image, read_mask
from mammogan.data.mias import lesions_from_rows, parse_info, patient_of
from mammogan.prepare.splits import SPLITS, assign_splits, split_counts

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample" / "mias"
FAST = {"sr_scales": [], "normal_patches_per_image": 0, "patch_zooms": [1.0]}


def _record(output_dir: Path, image_id: str) -> dict:
    return json.loads((output_dir / ".records" / f"{image_id}.json").read_text())


def _link(folder: Path, sources: list[Path]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        (folder / source.name).symlink_to(source)
    return folder


def _sample(tmp_path: Path, *ids: str) -> Path:
    return _link(tmp_path / "in", [SAMPLE / f"{i}.pgm" for i in ids])


@pytest.fixture
def mias(shared_data: Path) -> Path:
    folder = shared_data / "mias"
    if not (folder / "Info.txt").is_file():
        pytest.skip(f"{folder}/Info.txt not found")
    return folder


# --- MIAS geometry ---------------------------------------------------------------------------------------------


def test_mias_parser_turns_the_bottom_left_origin_into_rows(tmp_path):
    info = tmp_path / "Info.txt"
    info.write_text("MIAS header text\nREFNUM BG CLASS SEVERITY X Y RADIUS\n"
                    "mdb001 G CIRC B 535 425 197 \nmdb005 F CIRC B 477 133 30\nmdb005 F CIRC B 500 168 26\n"
                    "mdb003 D NORM \nmdb059 F CIRC B\nmdb216 D CALC M *NOTE 3*\n", encoding="latin-1")
    rows = parse_info(info)
    assert (rows["mdb001"][0].x, rows["mdb001"][0].y, rows["mdb001"][0].radius) == (535, 425, 197)  # as written
    (mass,) = lesions_from_rows(rows["mdb001"], 1024)
    assert mass.center == (535.0, 1024.0 - 425.0) and mass.radius == 197.0  # row = height - y
    assert [l.center for l in lesions_from_rows(rows["mdb005"], 1024)] == [(477.0, 891.0), (500.0, 856.0)]
    assert lesions_from_rows(rows["mdb001"], 512)[0].center == (535.0, 512.0 - 425.0)  # the frame's own height
    assert lesions_from_rows(rows["mdb003"], 1024) == []
    assert [(l.lesion_class, l.center) for l in lesions_from_rows(rows["mdb059"] + rows["mdb216"], 1024)] == \
        [("mass", None), ("calcification", None)]  # no coordinates: kept as findings, nothing drawn


CIRCUMSCRIBED_MASSES = ("mdb002", "mdb015", "mdb021", "mdb023", "mdb028", "mdb080", "mdb141")  # |1024 - 2y| >= 338


def _contrast(image: np.ndarray, cx: float, cy: float, radius: float) -> float:
    """Mean inside a disk minus mean of the ring around it (-inf when the disk is off the image)."""
    ys, xs = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    distance2 = (xs - cx) ** 2 + (ys - cy) ** 2
    inner, ring = distance2 <= radius**2, (distance2 > radius**2) & (distance2 <= 4 * radius**2)
    if not inner.any() or not ring.any():
        return -np.inf
    return float(image[inner].mean() - image[ring].mean())


def test_mias_circles_land_on_the_lesion_not_on_its_mirror(mias, tmp_path, run_prepare):
    _link(tmp_path / "in", [mias / f"{i}.pgm" for i in CIRCUMSCRIBED_MASSES])
    code, out = run_prepare(tmp_path / "p.config", kind="mias", input_dir="in", info_file=str(mias / "Info.txt"),
                            bit_depth=8, split_ratios=[1.0, 0.0, 0.0], **FAST)
    assert code == 0
    rows = parse_info(mias / "Info.txt")
    for image_id in CIRCUMSCRIBED_MASSES:
        record = _record(out, image_id)
        (row,) = rows[image_id]
        image = read_image(out / "train" / "images" / f"{image_id}.png").astype(np.float64)
        mask = read_mask(out / "train" / "masks" / f"{image_id}.png") > 0

        def prepared(x: float, y: float) -> tuple[float, float]:  # source pixel → prepared pixel, from the record
            if record["flipped"]:
                x = record["source_size"][0] - 1 - x
            x0, y0 = record["crop_box"][:2]
            return (x - x0) * record["resize"], (y - y0) * record["resize"]

        ys, xs = np.nonzero(mask)
        centroid = (xs.mean(), ys.mean())
        assert centroid == pytest.approx(prepared(row.x, 1024 - row.y), abs=1.0), image_id
        assert mask.sum() == pytest.approx(np.pi * row.radius**2, rel=0.05), image_id
        # The mass is brighter than its surroundings at the corrected row, not at the row read top-down.
        lesion = _contrast(image, *centroid, row.radius)
        unflipped = _contrast(image, *prepared(row.x, row.y), row.radius)
        assert lesion > 15 and lesion > unflipped + 15, (image_id, lesion, unflipped)


# --- bit depth ---------------------------------------------------------------------------------------------------


def test_16_bit_pngs_keep_more_than_256_levels_and_use_the_full_range(shared_data, tmp_path, run_prepare):
    folder = shared_data / "nyu" / "GMIC" / "images"
    names = ["0_L-CC.png", "0_R-CC.png"]
    if not all((folder / n).is_file() for n in names):
        pytest.skip(f"NYU sample PNGs not found in {folder}")
    _link(tmp_path / "in", [folder / n for n in names])
    source = read_image(folder / names[0])
    assert source.dtype == np.uint16 and source.max() == 4095  # 12-bit data in a 16-bit PNG, no sBIT chunk
    code, out = run_prepare(tmp_path / "p.config", kind="images", input_dir="in", max_size=512,
                            split_ratios=[1.0, 0.0, 0.0], **FAST)
    assert code == 0
    for name in names:
        image = read_image(out / "train" / "images" / name)
        assert image.dtype == np.uint16 and max(image.shape) == 512
        levels = np.unique(image)
        assert levels.size > 256
        assert np.mean(levels % 257 != 0) > 0.9  # not 8-bit data stretched to 16 bits
        assert image.max() > 0.95 * 65535  # 4095 is white: the data fill the 16-bit range
    code, out8 = run_prepare(tmp_path / "p8.config", kind="images", input_dir="in", output_dir="out8", max_size=512,
                             bit_depth=8, split_ratios=[1.0, 0.0, 0.0], **FAST)
    assert code == 0
    image8 = read_image(out8 / "train" / "images" / names[0])
    image16 = read_image(out / "train" / "images" / names[0])
    assert image8.dtype == np.uint8 and np.abs(image8.astype(np.float64) * 257 - image16).max() <= 257


# --- idempotency and atomic outputs ------------------------------------------------------------------------------

SAMPLE_IDS = ("mdb001", "mdb002", "mdb010")


def _outputs(output_dir: Path) -> dict[str, int]:
    """Inode of every per-image output file: an atomic rewrite (rename onto the name) changes it."""
    return {str(p.relative_to(output_dir)): p.stat().st_ino for p in output_dir.rglob("*.png")}


def test_rerun_skips_finished_images_and_overwrite_redoes_them(tmp_path, run_prepare):
    _sample(tmp_path, *SAMPLE_IDS)
    keys = {"kind": "mias", "input_dir": "in", "info_file": str(SAMPLE / "Info.txt"), "bit_depth": 8,
            "sr_scales": [2], "patch_size": 32}
    code, out = run_prepare(tmp_path / "p.config", **keys)
    assert code == 0
    first = _outputs(out)
    assert len(first) > 3 * 4  # image, 4 masks, LR and patches per image
    records = {i: (out / ".records" / f"{i}.json").read_bytes() for i in SAMPLE_IDS}
    first_pixels = {name: read_image(out / name) for name in first if name.endswith(".png")}

    code, out = run_prepare(tmp_path / "p.config", **keys)
    assert code == 0
    assert "3 images (3 already done)" in (out / "prepare.log").read_text()
    assert _outputs(out) == first  # nothing rewritten
    assert {i: (out / ".records" / f"{i}.json").read_bytes() for i in SAMPLE_IDS} == records

    code, out = run_prepare(tmp_path / "p.config", **keys, overwrite=True)
    assert code == 0
    assert (out / "prepare.log").read_text().count("(0 already done)") == 2
    again = _outputs(out)
    assert again.keys() == first.keys() and all(again[k] != first[k] for k in first)  # every file replaced
    for name, pixels in first_pixels.items():  # same content: preparing is deterministic
        assert np.array_equal(read_image(out / name), pixels), name
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]


def test_changed_settings_or_split_redo_finished_images(tmp_path, run_prepare):
    ids = ("mdb001", "mdb002", "mdb005", "mdb006", "mdb009", "mdb010", "mdb011", "mdb012")
    _sample(tmp_path, *ids)
    keys = {"kind": "mias", "input_dir": "in", "info_file": str(SAMPLE / "Info.txt"), "normal_patches_per_image": 1,
            "patch_size": 32, "split_ratios": [0.5, 0.25, 0.25]}
    code, out = run_prepare(tmp_path / "p.config", **keys, bit_depth=8, sr_scales=[2])
    assert code == 0
    before = json.loads((out / "manifest.json").read_text())["splits"]
    seed = next(s for s in range(100) if assign_splits({i: patient_of(i) for i in ids}, [0.5, 0.25, 0.25], s)
                != {i: split for split in SPLITS for i in before[split]})
    code, out = run_prepare(tmp_path / "p.config", **keys, bit_depth=16, sr_scales=[2, 4], seed=seed)
    assert code == 0
    log = (out / "prepare.log").read_text()
    assert log.count("8 images (0 already done)") == 2  # first run, and the rerun: nothing reused
    assert "8 finished images were made with other settings, split or annotations; they are redone" in log
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] != before and manifest["bit_depth"] == 16
    for split in SPLITS:  # every image in its new split only, with the new outputs
        for folder in ("images", "masks", "masks_mass", "lr_x2"):
            assert sorted(p.stem for p in (out / split / folder).glob("*.png")) == manifest["splits"][split]
        assert all(read_image(out / split / "images" / f"{i}.png").dtype == np.uint16 for i in manifest["splits"][split])
        assert all((out / split / "lr_x4" / f"{i}.png").is_file() for i in manifest["splits"][split])
        patches = {p.name.split("_")[0] for p in (out / "patches" / split / "images").glob("*.png")}
        assert patches <= set(manifest["splits"][split])


def test_a_failure_mid_image_leaves_no_record_and_no_partial_file(tmp_path, run_prepare, monkeypatch):
    import mammogan.prepare.pipeline as pipeline
    from mammogan.errors import DataError

    _sample(tmp_path, *SAMPLE_IDS)
    keys = {"kind": "mias", "input_dir": "in", "info_file": str(SAMPLE / "Info.txt"), "bit_depth": 8, "sr_scales": [2],
            "normal_patches_per_image": 0, "split_ratios": [1.0, 0.0, 0.0]}
    real_degrade = pipeline.degrade

    def failing_degrade(image, spec, seed=0):
        if image.shape == pipeline_shapes["mdb002"]:
            raise DataError("mdb002: simulated crash while writing its LR image")
        return real_degrade(image, spec, seed)

    code, reference = run_prepare(tmp_path / "ref.config", **keys, output_dir="reference")
    assert code == 0
    pipeline_shapes = {i: read_image(reference / "train" / "images" / f"{i}.png").shape for i in SAMPLE_IDS}
    assert len(set(pipeline_shapes.values())) == 3  # the shape identifies the image

    monkeypatch.setattr(pipeline, "degrade", failing_degrade)
    code, out = run_prepare(tmp_path / "p.config", **keys)
    assert code == 2
    assert not (out / ".records" / "mdb002.json").exists()  # not marked done ...
    assert (out / "train" / "images" / "mdb002.png").is_file()  # ... though its image was already written
    assert not (out / "train" / "lr_x2" / "mdb002.png").exists()
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]  # no half-written files under any name

    monkeypatch.setattr(pipeline, "degrade", real_degrade)
    code, out = run_prepare(tmp_path / "p.config", **keys)
    assert code == 0
    assert "3 images (2 already done)" in (out / "prepare.log").read_text()
    for folder in ("images", "masks", "lr_x2"):
        for image_id in SAMPLE_IDS:
            assert np.array_equal(read_image(out / "train" / folder / f"{image_id}.png"),
                                  read_image(reference / "train" / folder / f"{image_id}.png"))


# --- patient-level splits ----------------------------------------------------------------------------------------


def test_split_by_patient_keeps_each_mias_pair_together(mias, tmp_path, run_prepare):
    ids = [f"mdb{n:03d}" for n in range(1, 41)]  # 20 patients, a left and a right film each
    _link(tmp_path / "in", [mias / f"{i}.pgm" for i in ids])
    code, out = run_prepare(tmp_path / "p.config", kind="mias", input_dir="in", info_file=str(mias / "Info.txt"),
                            bit_depth=8, max_size=96, **FAST)
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    split_of = {i: s for s in SPLITS for i in manifest["splits"][s]}
    assert sorted(split_of) == ids
    patients: dict[str, set[str]] = {}
    for image_id, split in split_of.items():
        patients.setdefault(patient_of(image_id), set()).add(split)
    assert len(patients) == 20 and all(len(s) == 1 for s in patients.values())  # no patient in two splits
    counts = split_counts(20, [0.7, 0.15, 0.15])
    assert tuple(manifest["patients"][s] for s in SPLITS) == counts == (14, 3, 3)
    for split in SPLITS:  # images and masks paired by name, each image in its split only
        names = sorted(p.name for p in (out / split / "images").glob("*.png"))
        assert names == sorted(f"{i}.png" for i in manifest["splits"][split])
        assert names == sorted(p.name for p in (out / split / "masks").glob("*.png"))
        assert all(_record(out, Path(n).stem)["patient_id"] == patient_of(Path(n).stem) for n in names)
    patient_of_image = {i: patient_of(i) for i in ids}
    assert assign_splits(patient_of_image, [0.7, 0.15, 0.15], 42) == split_of  # the run used this seeded assignment
    assert assign_splits(patient_of_image, [0.7, 0.15, 0.15], 7) != split_of


# --- plain images ------------------------------------------------------------------------------------------------


def test_plain_png_tiff_jpeg_go_through_the_same_crop_and_orientation(tmp_path, run_prepare):
    source = read_image(SAMPLE / "mdb001.pgm")  # a right breast: chest wall on the image's right
    folder = tmp_path / "plain"
    folder.mkdir()
    cv2.imwrite(str(folder / "as_png.png"), source)
    cv2.imwrite(str(folder / "as_tiff.tif"), source.astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "as_jpeg.jpg"), source, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(folder / "mirrored.png"), source[:, ::-1])  # a left breast
    labelled = source.copy()
    labelled[20:60, 20:110] = source.max()  # a burned-in label in the background corner
    cv2.imwrite(str(folder / "labelled.png"), labelled)
    _sample(tmp_path, "mdb001")
    common = {"bit_depth": 8, "split_ratios": [1.0, 0.0, 0.0], **FAST}
    code, mias_out = run_prepare(tmp_path / "m.config", kind="mias", input_dir="in", info_file=str(SAMPLE / "Info.txt"),
                                 output_dir="mias", **common)
    assert code == 0
    code, out = run_prepare(tmp_path / "p.config", kind="images", input_dir="plain", output_dir="plain_out", **common)
    assert code == 0

    reference = _record(mias_out, "mdb001")  # the MIAS path, orientation from laterality R
    expected = read_image(mias_out / "train" / "images" / "mdb001.png")
    assert reference["flipped"] and reference["chest_wall_side_from"] == "laterality R"
    for name in ("as_png", "as_tiff", "mirrored", "labelled"):
        record = _record(out, name)
        assert record["chest_wall_side_from"] == "image content"
        assert record["flipped"] == (name != "mirrored")
        assert record["crop_box"] == reference["crop_box"], name
        assert np.array_equal(read_image(out / "train" / "images" / f"{name}.png"), expected), name
    jpeg = _record(out, "as_jpeg")
    assert jpeg["flipped"] and np.abs(np.subtract(jpeg["crop_box"], reference["crop_box"])).max() <= 4
    x0, y0, x1, y1 = reference["crop_box"]
    width = source.shape[1]
    assert x1 <= width - 1 - 110  # the label (source columns 20-109, flipped to the far right) is outside the crop


# --- SR degradations ---------------------------------------------------------------------------------------------


def test_matlab_bicubic_imresize_on_known_examples():
    # MATLAB imresize(A, 0.5): antialiased cubic kernel (a = -0.5) widened to 8 taps, weights
    # 0.5 * cubic(0.5 * d) at d = ±0.5, ±1.5, ±2.5, ±3.5 = 0.43359375, 0.11328125, -0.03515625, -0.01171875,
    # symmetric padding. For [1 2 3 4]: 3*w3.5 + 2*w2.5 + 1*w1.5 + 1*w0.5 + 2*w0.5 + 3*w1.5 + 4*w2.5 + 4*w3.5.
    assert imresize(np.array([[1.0, 2.0, 3.0, 4.0]]), (1, 2)) == pytest.approx(np.array([[1.4609375, 3.5390625]]))
    # reshape(1:16, 4, 4)' = 4 * (row - 1) + column; the resize is linear and keeps constants.
    grid = np.arange(1, 17, dtype=np.float64).reshape(4, 4)
    assert imresize(grid, (2, 2)) == pytest.approx(np.array([[3.3046875, 5.3828125], [11.6171875, 13.6953125]]))
    low = degrade(grid.astype(np.uint8) * 10, DegradationSpec("bicubic", 2))
    assert low.dtype == np.uint8 and low.tolist() == [[33, 54], [116, 137]]  # rounded like MATLAB's uint8 output


@pytest.mark.parametrize("name", ["bicubic", "gaussian"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_degradations_give_lr_of_the_right_size(name, dtype):
    rng = np.random.default_rng(0)
    image = (rng.random((96, 72)) * np.iinfo(dtype).max).astype(dtype)
    for scale in (2, 4):
        low = degrade(image, DegradationSpec(name, scale))
        assert low.shape == (96 // scale, 72 // scale) and low.dtype == dtype
        flat = degrade(np.full((40, 24), 1000 if dtype == np.uint16 else 100, dtype), DegradationSpec(name, scale))
        assert flat.shape == (40 // scale, 24 // scale) and np.all(flat == flat.flat[0]) and flat.flat[0] in (100, 1000)
    noisy = [degrade(image, DegradationSpec(name, 2, noise_std=0.01), seed=s) for s in (1, 1, 2)]
    assert np.array_equal(noisy[0], noisy[1]) and not np.array_equal(noisy[0], noisy[2])
    assert np.abs(noisy[0].astype(np.float64) - degrade(image, DegradationSpec(name, 2))).mean() > 0


@pytest.mark.parametrize("name", ["bicubic", "gaussian"])
def test_prepared_lr_images_are_hr_over_scale(tmp_path, run_prepare, name):
    _sample(tmp_path, "mdb005", "mdb006")
    code, out = run_prepare(tmp_path / "p.config", kind="mias", input_dir="in", info_file=str(SAMPLE / "Info.txt"),
                            degradation=name, sr_scales=[2, 4], normal_patches_per_image=0, split_ratios=[1.0, 0.0, 0.0])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    for image_id in ("mdb005", "mdb006"):
        hr = read_image(out / "train" / "images" / f"{image_id}.png")
        assert hr.shape[0] % 4 == 0 and hr.shape[1] % 4 == 0
        for scale in (2, 4):
            low = read_image(out / "train" / f"lr_x{scale}" / f"{image_id}.png")
            assert low.shape == (hr.shape[0] // scale, hr.shape[1] // scale)
            assert np.array_equal(low, degrade(hr, DegradationSpec(name, scale), seed=42))
            assert manifest["sr"][f"x{scale}"]["degradation"]["name"] == name


# --- fixed-size SR pairs -----------------------------------------------------------------------------------------


def test_sr_patch_pairs_tile_the_breast(tmp_path, run_prepare):
    _sample(tmp_path, "mdb001", "mdb002")
    code, out = run_prepare(tmp_path / "p.config", kind="mias", input_dir="in", info_file=str(SAMPLE / "Info.txt"),
                            sr_scales=[2, 4], sr_patch_size=64, normal_patches_per_image=0, split_ratios=[1.0, 0.0, 0.0])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sr_patch_size"] == 64
    total = 0
    for image_id in ("mdb001", "mdb002"):
        record = _record(out, image_id)
        image = read_image(out / "train" / "images" / f"{image_id}.png")
        boxes = record["sr_patches"]
        assert boxes and all(x0 % 64 == 0 and y0 % 64 == 0 and x1 - x0 == 64 == y1 - y0 and x1 <= image.shape[1]
                             and y1 <= image.shape[0] for x0, y0, x1, y1 in boxes)
        assert len({tuple(b) for b in boxes}) == len(boxes)
        # Inside the breast: a cleared-background tile would be mostly zeros.
        assert all(np.mean(image[y0:y1, x0:x1] > 0) >= 0.9 for x0, y0, x1, y1 in boxes)
        for scale in (2, 4):
            low = read_image(out / "train" / f"lr_x{scale}" / f"{image_id}.png")
            for x0, y0, x1, y1 in boxes:
                name = f"{image_id}_x{x0}_y{y0}.png"
                hr_patch = read_image(out / "train" / f"sr_patches_x{scale}" / "images" / name)
                lr_patch = read_image(out / "train" / f"sr_patches_x{scale}" / "lr" / name)
                assert np.array_equal(hr_patch, image[y0:y1, x0:x1])
                assert np.array_equal(lr_patch, low[y0 // scale : y1 // scale, x0 // scale : x1 // scale])
        total += len(boxes)
    for scale in (2, 4):
        patches = manifest["sr"][f"x{scale}"]["patches"]
        assert patches["subdir"] == f"sr_patches_x{scale}" and (patches["hr_size"], patches["lr_size"]) == (64, 64 // scale)
        assert patches["count"] == {"train": total, "valid": 0, "test": 0}
        assert len(list((out / "train" / f"sr_patches_x{scale}" / "lr").glob("*.png"))) == total


def test_settings_carry_every_prepare_key_and_fingerprint_all_but_the_run_keys(tmp_path):
    import pickle

    from mammogan.config.loader import load_config
    from mammogan.config.schema import PREPARE
    from mammogan.prepare.settings import RUN_KEYS, PrepareSettings

    (tmp_path / "p.config").write_text('[prepare]\noutput_dir = "out"\npatch_size = 32\n')
    settings = PrepareSettings.from_config(load_config(tmp_path / "p.config"), b"key")
    keys = {key.name for key in PREPARE.keys}
    assert RUN_KEYS <= keys  # no stale name: a renamed key would silently join the fingerprint
    workers_copy = pickle.loads(pickle.dumps(settings))  # what a worker process receives
    assert workers_copy == settings and workers_copy.patch_size == 32
    assert {key: getattr(workers_copy, key) for key in keys} == load_config(tmp_path / "p.config").prepare.as_dict()
    assert set(settings.output_values()) == (keys - RUN_KEYS) | {"pseudonym_key"}


def test_sr_patch_size_must_divide_by_every_scale(tmp_path, run_prepare):
    from mammogan.config.loader import load_config
    from mammogan.errors import ConfigError
    from mammogan.prepare.settings import PrepareSettings

    _sample(tmp_path, "mdb001")
    keys = {"kind": "mias", "input_dir": "in", "info_file": str(SAMPLE / "Info.txt"), "sr_scales": [2, 4], "sr_patch_size": 66}
    code, out = run_prepare(tmp_path / "p.config", **keys)
    assert code != 0 and not (out / ".records").exists()
    with pytest.raises(ConfigError, match=r"p\.config: \[prepare\] sr_patch_size = 66: expected a multiple of 4"):
        PrepareSettings.from_config(load_config(tmp_path / "p.config"), b"key")


def test_folders_kind_joins_png_and_dicom_folders_and_groups_png_patients_by_pattern(tmp_path, run_prepare, write_dicom,
                                                                                     synthetic_breast):
    """One dataset from a PNG export and a DICOM export: a patient's PNG views share a split, DICOM patients come
    from their headers (pseudonymised), and a PNG the pattern does not match fails alone."""
    pngs = tmp_path / "site_a"
    pngs.mkdir()
    for index, name in enumerate(("1_L_CC", "1_R_CC", "2_L_CC", "2_R_CC", "3_L_CC", "3_R_CC", "notes")):
        cv2.imwrite(str(pngs / f"{name}.png"), synthetic_breast(200, 260, seed=index))
    write_dicom(tmp_path / "site_b" / "4711" / "a.dcm", synthetic_breast(200, 260, seed=9), PatientID="4711", ImageLaterality="L")
    write_dicom(tmp_path / "site_b" / "4711" / "b.dcm", synthetic_breast(200, 260, seed=10), PatientID="4711", ImageLaterality="R")
    code, out = run_prepare(tmp_path / "f.config", kind="folders", input_dirs=["site_a", "site_b"],
                            patient_pattern="^(\\d+)_", bit_depth=16, split_ratios=[0.5, 0.25, 0.25], **FAST)
    assert code == 2  # "notes" is not <patient>_...: it alone fails, the batch still finishes
    records = {path.stem: json.loads(path.read_text()) for path in (out / ".records").glob("*.json")}
    assert set(records) == {"1_L_CC", "1_R_CC", "2_L_CC", "2_R_CC", "3_L_CC", "3_R_CC", "a", "b"}
    for patient in ("1", "2", "3"):
        assert records[f"{patient}_L_CC"]["patient_id"] == records[f"{patient}_R_CC"]["patient_id"] == patient
        assert records[f"{patient}_L_CC"]["split"] == records[f"{patient}_R_CC"]["split"]
    assert records["a"]["patient_id"] == records["b"]["patient_id"] != "4711" and records["a"]["split"] == records["b"]["split"]
    assert len({r["split"] for r in records.values()}) == 3  # four patients over the three splits
    failures = (out / "prepare.log").read_text()
    assert "notes" in failures and "patient_pattern" in failures


def test_a_patient_pattern_without_one_group_is_a_config_error(tmp_path, run_prepare):
    (tmp_path / "in").mkdir()
    code, _ = run_prepare(tmp_path / "f.config", kind="folders", input_dirs=["in"], patient_pattern="^\\d+_", **FAST)
    assert code == 2

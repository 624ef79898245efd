"""CBIS-DDSM case-description CSVs (real, ../shared/data/cbis-ddsm-csv) and `prepare` with kind = "cbis".

No CBIS-DDSM images are available, so the end-to-end test builds small synthetic images and ROI masks at
the paths the real table rows name, in the three layouts met in practice.
"""

from __future__ import annotations

import csv
import json
import pickle
import re
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from mammogan.data import cbis
from mammogan.data.cbis import case_description_files, read_case_descriptions
from mammogan.data.images import read_mask

TABLES = {  # file → (rows, full mammograms, density column spelling)
    "calc_case_description_test_set.csv": (326, 284, "breast density"),
    "calc_case_description_train_set.csv": (1546, 1227, "breast density"),
    "mass_case_description_test_set.csv": (378, 361, "breast_density"),
    "mass_case_description_train_set.csv": (1318, 1231, "breast_density"),
}


@pytest.fixture
def tables(shared_data: Path) -> Path:
    folder = shared_data / "cbis-ddsm-csv"
    if not all((folder / name).is_file() for name in TABLES):
        pytest.skip(f"{folder} does not hold the four CBIS-DDSM case-description CSVs")
    return folder


@pytest.mark.parametrize("name", sorted(TABLES))
def test_each_table_reads_into_per_image_metadata(tables, name):
    rows, image_count, density_column = TABLES[name]
    assert density_column in (tables / name).read_text().splitlines()[0]
    images = read_case_descriptions([tables / name])
    assert len(images) == image_count
    abnormalities = [a for m in images.values() for a in m.abnormalities]
    assert len(abnormalities) == rows
    kind = "calcification" if name.startswith("calc") else "mass"
    assert {a.abnormality_type for a in abnormalities} == {kind}
    assert {a.pathology for a in abnormalities} <= {"MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK"}
    details = {"calcification": {"calc_type", "calc_distribution"}, "mass": {"mass_shape", "mass_margins"}}[kind]
    assert all(set(a.details) == details for a in abnormalities)
    for meta in images.values():
        assert re.fullmatch(r"P_\d{5}", meta.patient_id)
        assert meta.laterality in ("L", "R") and meta.view in ("CC", "MLO")
        assert meta.image_id == meta.image_path.split("/")[0] and meta.image_path.endswith(".dcm")
        for a in meta.abnormalities:  # quoted paths: the embedded trailing newline is gone
            assert a.roi_mask_path.endswith(".dcm") and a.cropped_image_path.endswith(".dcm")
            assert a.roi_mask_path.startswith(f"{meta.image_id}_{a.abnormality_id}/")
    densities = Counter(m.density for m in images.values())
    assert set(densities) - {None} <= {1, 2, 3, 4}
    assert densities[None] == (2 if name == "calc_case_description_test_set.csv" else 0)  # P_01743: density 0


def test_all_tables_together(tables):
    images = read_case_descriptions(case_description_files(tables))
    assert len(images) == sum(count for _, count, _ in TABLES.values())
    meta = images["Calc-Test_P_00038_RIGHT_CC"]
    assert (meta.patient_id, meta.laterality, meta.view, meta.density) == ("P_00038", "R", "CC", 2)
    assert [(a.abnormality_id, a.pathology, a.assessment) for a in meta.abnormalities] == \
        [(1, "BENIGN_WITHOUT_CALLBACK", "2"), (2, "BENIGN_WITHOUT_CALLBACK", "2")]
    mass = images["Mass-Test_P_00016_LEFT_CC"].abnormalities[0]
    assert (mass.pathology, mass.assessment, mass.subtlety, mass.details["mass_shape"]) == ("MALIGNANT", "5", 5, "IRREGULAR")


# --- end to end ---------------------------------------------------------------------------------------------------

WIDTH, HEIGHT = 400, 640


def _subset(source: Path, target: Path, image_ids: set[str]) -> list[dict[str, str]]:
    """Copy the rows of some images, keeping the original quoting, CRLF and embedded newlines."""
    with source.open(newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [r for r in rows[1:] if r[11].split("/")[0] in image_ids]
    with target.open("w", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows([rows[0], *kept])
    return [dict(zip(rows[0], r)) for r in kept]


def _ellipse_mask(size: tuple[int, int], centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.ellipse(mask, centre, axes, 30, 0, 360, 255, -1)
    return mask


def _write(path: Path, pixels: np.ndarray, write_dicom) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".dcm":
        write_dicom(path, pixels)
    else:
        assert cv2.imwrite(str(path), pixels)


def _png(table_path: str) -> Path:
    return Path(table_path.strip()).with_suffix(".png")


def _expected(mask: np.ndarray, record: dict) -> np.ndarray:
    """A full-image mask through the record's flip, crop and resize."""
    if record["flipped"]:
        mask = mask[:, ::-1]
    x0, y0, x1, y1 = record["crop_box"]
    crop = mask[y0:y1, x0:x1].astype(np.float32) / 255
    width, height = record["size"]
    size = (round(crop.shape[1] * record["resize"]), round(crop.shape[0] * record["resize"]))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)[:height, :width] >= 0.5


def test_prepare_cbis_end_to_end(tables, tmp_path, run_prepare, write_dicom, synthetic_breast, monkeypatch):
    root = tmp_path / "images"
    metadata = tmp_path / "tables"
    metadata.mkdir()
    mass_rows = _subset(tables / "mass_case_description_test_set.csv", metadata / "mass_test.csv",
                        {"Mass-Test_P_00016_LEFT_CC", "Mass-Test_P_00016_LEFT_MLO"})
    calc_rows = _subset(tables / "calc_case_description_test_set.csv", metadata / "calc_test.csv",
                        {"Calc-Test_P_00038_RIGHT_CC", "Calc-Test_P_00038_RIGHT_MLO"})
    assert (metadata / "mass_test.csv").read_bytes().count(b'.dcm\n"') == 2  # the quirk survived the copy
    size = (WIDTH, HEIGHT)
    cropped = (np.random.default_rng(1).random((48, 40)) * 4000).astype(np.uint16)
    truth: dict[str, dict[str, np.ndarray]] = {}

    # A: DICOMs at exactly the table paths (TCIA layout); the mass ROI mask is the listed 000001.dcm.
    (mass,) = [r for r in mass_rows if r["image file path"].startswith("Mass-Test_P_00016_LEFT_CC/")]
    _write(root / mass["image file path"], synthetic_breast(*size, chest_wall="left", seed=1), write_dicom)
    truth["Mass-Test_P_00016_LEFT_CC"] = {"mass": _ellipse_mask(size, (120, 300), (40, 25))}
    _write(root / mass["ROI mask file path"].strip(), truth["Mass-Test_P_00016_LEFT_CC"]["mass"], write_dicom)
    _write(root / mass["cropped image file path"].strip(), cropped, write_dicom)

    # B: NBIA download layout (case folder / study / series / 1-N.dcm), mask and crop in one series with
    # the crop first; abnormality 2's mask has half the image's size (a known CBIS-DDSM quirk).
    nbia = root / "CBIS-DDSM"
    _write(nbia / "Calc-Test_P_00038_RIGHT_CC/08-29-2017-DDSM-NA-96009/1.000000-full mammogram images-63992/1-1.dcm",
           synthetic_breast(*size, chest_wall="right", seed=2), write_dicom)
    first = _ellipse_mask(size, (300, 250), (20, 12))
    second_half = _ellipse_mask((WIDTH // 2, HEIGHT // 2), (140, 200), (12, 8))
    second = cv2.resize(second_half, size, interpolation=cv2.INTER_NEAREST)
    truth["Calc-Test_P_00038_RIGHT_CC"] = {"calcification": np.maximum(first, second)}
    for index, mask in ((1, first), (2, second_half)):
        series = nbia / f"Calc-Test_P_00038_RIGHT_CC_{index}/08-29-2017-DDSM-NA-{index}/1.000000-ROI mask images-{index}"
        _write(series / "1-1.dcm", cropped, write_dicom)
        _write(series / "1-2.dcm", mask, write_dicom)

    # C: PNG copies at the table paths (16-bit image, 0/255 masks); abnormality 2 has only its crop.
    mlo = [r for r in calc_rows if r["image file path"].startswith("Calc-Test_P_00038_RIGHT_MLO/")]
    assert len(mlo) == 2
    image_c = synthetic_breast(*size, chest_wall="right", seed=3) * 16
    _write(root / _png(mlo[0]["image file path"]), image_c, write_dicom)
    truth["Calc-Test_P_00038_RIGHT_MLO"] = {"calcification": _ellipse_mask(size, (330, 400), (25, 15))}
    _write(root / _png(mlo[0]["ROI mask file path"]), truth["Calc-Test_P_00038_RIGHT_MLO"]["calcification"], write_dicom)
    _write(root / _png(mlo[0]["cropped image file path"]), (cropped >> 4).astype(np.uint8), write_dicom)
    _write(root / _png(mlo[1]["cropped image file path"]), (cropped >> 4).astype(np.uint8), write_dicom)
    # Mass-Test_P_00016_LEFT_MLO (D) has no image at all.

    # Listing the sources reads no mask pixels: the worker preparing an image reads its ROI masks.
    read: list[Path] = []
    monkeypatch.setattr(cbis, "_stored_pixels", read.append)
    sources, _ = cbis.source_images(root, read_case_descriptions(case_description_files(metadata)))
    assert read == [] and len(sources) == 3 and all(s.lesions == [] and s.lesion_reader for s in sources)
    assert pickle.loads(pickle.dumps(sources[0])).lesion_reader == sources[0].lesion_reader  # goes to a worker process
    monkeypatch.undo()

    code, out = run_prepare(tmp_path / "p.config", kind="cbis", input_dir="images", metadata_file="tables", workers=2,
                            sr_scales=[], normal_patches_per_image=0, patch_size=32, split_ratios=[1.0, 0.0, 0.0])
    assert code == 0
    report = json.loads((out / "match_report.json").read_text())
    assert report["images"] == 3
    assert report["missing_images"] == ["Mass-Test_P_00016_LEFT_MLO"]
    assert len(report["missing_roi_masks"]) == 1 and report["missing_roi_masks"][0].startswith("Calc-Test_P_00038_RIGHT_MLO:")

    for image_id, classes in truth.items():
        record = json.loads((out / ".records" / f"{image_id}.json").read_text())
        assert record["laterality"] == image_id.split("_")[3][0]
        assert record["flipped"] == (record["laterality"] == "R")
        for lesion_class, mask in classes.items():
            prepared = read_mask(out / "train" / f"masks_{lesion_class}" / f"{image_id}.png") > 0
            expected = _expected(mask, record)
            iou = (prepared & expected).sum() / (prepared | expected).sum()
            assert iou > 0.85, (image_id, lesion_class, iou)
        other_classes = {"calcification", "mass"} - set(classes)
        assert all(not read_mask(out / "train" / f"masks_{c}" / f"{image_id}.png").any() for c in other_classes)
    record = json.loads((out / ".records" / "Calc-Test_P_00038_RIGHT_MLO.json").read_text())
    assert [l["label"] for l in record["lesions"]] == ["calcification 1", "calcification 2 (no ROI mask)"]
    assert record["metadata"]["abnormalities"][1]["pathology"] == "BENIGN_WITHOUT_CALLBACK"
    a = json.loads((out / ".records" / "Mass-Test_P_00016_LEFT_CC.json").read_text())
    b = json.loads((out / ".records" / "Calc-Test_P_00038_RIGHT_CC.json").read_text())
    assert a["patient_id"] != b["patient_id"] and "P_000" not in a["patient_id"]  # pseudonymised table patient ids

"""DICOM → PNG through `mammogan prepare` (kind = "dicom") on the real RSNA/NEMA files in ../shared/data."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np

from mammogan.data.images import read_image

SIGMOID_MONOCHROME1 = "dicom/rsna/10006/1874946579.dcm"  # 4915x5355, 16-bit, VOILUTFunction SIGMOID, right breast
MONOCHROME2_12BIT = "dicom/rsna/10008/361203119.dcm"  # 2082x2776, 12-bit, WC 2048 / WW 4096, right breast
JPEG_EXTENDED_12BIT = "dicom/nema/MG1_JPLY.dcm"  # no installed plugin decodes it
FAST = {"sr_scales": [], "normal_patches_per_image": 0}  # only the image and its masks


def _inputs(tmp_path: Path, shared_data: Path, *names: str) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for name in names:
        shutil.copy(shared_data / name, folder / Path(name).name)
    return folder


def _record(output_dir: Path, image_id: str) -> dict:
    return json.loads((output_dir / ".records" / f"{image_id}.json").read_text())


def _image(output_dir: Path, image_id: str) -> np.ndarray:
    record = _record(output_dir, image_id)
    return read_image(output_dir / record["split"] / "images" / f"{image_id}.png")


def test_sigmoid_monochrome1_has_bright_tissue_and_dark_background(tmp_path, shared_data, run_prepare):
    _inputs(tmp_path, shared_data, SIGMOID_MONOCHROME1)
    # Background clearing off: what is dark or bright comes from the LUTs and the inversion alone.
    code, out = run_prepare(tmp_path / "p.config", kind="dicom", input_dir="in", max_size=512, clear_background=False, **FAST)
    assert code == 0
    record = _record(out, "1874946579")
    assert record["metadata"]["VOILUTFunction"] == "SIGMOID"
    assert record["metadata"]["PhotometricInterpretation"] == "MONOCHROME1"
    assert record["flipped"] and record["chest_wall_side_from"] == "laterality R"
    x0, y0, x1, y1 = record["crop_box"]
    assert (x1 - x0) < 0.25 * 4915 and (y1 - y0) < 0.7 * 5355  # breast only: background and detector seam cropped away
    image = _image(out, "1874946579").astype(np.float64) / 65535
    assert image.shape == tuple(record["size"][::-1]) and max(image.shape) == 512
    height, width = image.shape
    # Right breast flipped so the chest wall is on the left; the skin side's corners are background (raw 3044).
    corners = np.concatenate([image[: height // 12, -width // 5 :], image[-height // 12 :, -width // 5 :]])
    breast = image[height // 3 : 2 * height // 3, : width // 2]
    assert np.median(corners) < 0.02 and np.percentile(corners, 90) < 0.05
    assert np.median(breast) > 0.1
    assert np.percentile(breast, 99) > 0.5  # dense (fibroglandular) tissue is bright
    assert np.median(breast) > 10 * max(np.median(corners), 0.005)


def test_16_bit_output_keeps_full_precision_and_8_bit_is_optional(tmp_path, shared_data, run_prepare):
    _inputs(tmp_path, shared_data, MONOCHROME2_12BIT)
    code, out = run_prepare(tmp_path / "p16.config", kind="dicom", input_dir="in", output_dir="out16", **FAST)
    assert code == 0
    image = _image(out, "361203119")
    assert image.dtype == np.uint16
    levels = np.unique(image)
    assert levels.size > 256
    assert np.mean(levels % 257 != 0) > 0.9  # not 8-bit data stretched to 16 bits
    code, out8 = run_prepare(tmp_path / "p8.config", kind="dicom", input_dir="in", output_dir="out8", bit_depth=8, **FAST)
    assert code == 0
    image8 = _image(out8, "361203119")
    assert image8.dtype == np.uint8 and image8.shape == image.shape
    assert np.abs(image8.astype(np.float64) * 257 - image).max() <= 257  # same picture, coarser levels


def _failed_lines(output_dir: Path) -> list[str]:
    return [line for line in (output_dir / "prepare.log").read_text().splitlines() if "FAILED" in line]


def test_bad_files_get_one_clear_line_and_the_batch_finishes(tmp_path, shared_data, run_prepare, write_dicom):
    folder = _inputs(tmp_path, shared_data, JPEG_EXTENDED_12BIT, MONOCHROME2_12BIT)
    data = (shared_data / MONOCHROME2_12BIT).read_bytes()
    (folder / "truncated.dcm").write_bytes(data[: len(data) // 2])
    write_dicom(folder / "header_only.dcm", None, Rows=64, Columns=64, ImageLaterality="L")

    code, out = run_prepare(tmp_path / "fail.config", kind="dicom", input_dir="in", max_size=256, **FAST)
    assert code != 0
    assert _image(out, "361203119").shape[0] > 0  # the good file was prepared anyway
    assert sum(json.loads((out / "manifest.json").read_text())["splits"].values(), []) == ["361203119"]
    failed = _failed_lines(out)
    assert len(failed) == 3
    jply = [line for line in failed if "MG1_JPLY.dcm" in line]
    assert len(jply) == 1
    assert "JPEG Extended (Process 2 and 4)" in jply[0] and "1.2.840.10008.1.2.4.51" in jply[0]
    assert re.search(r"plugins: (pillow|gdcm|pylibjpeg)\S*: \S", jply[0], re.IGNORECASE)  # which plugin failed, and why
    assert any("truncated.dcm" in line and "truncated" in line.split("truncated.dcm", 1)[1] for line in failed)
    assert any("header_only.dcm" in line and "no pixel data" in line for line in failed)

    # on_error = "skip": same report, exit code 0; the finished image is not redone.
    code, out = run_prepare(tmp_path / "skip.config", kind="dicom", input_dir="in", max_size=256, on_error="skip", **FAST)
    assert code == 0
    assert len(_failed_lines(out)) == 6
    assert "1 already done" in (out / "prepare.log").read_text()


FAKE_IDENTIFIERS = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "FAKE-4711-XY",
    "PatientBirthDate": "19580317",
    "StudyDate": "20190522",
    "SeriesDate": "20190523",
    "AcquisitionDate": "20190524",
    "ContentDate": "20190525",
    "StudyTime": "101530",
    "AccessionNumber": "ACC99887766",
    "InstitutionName": "Saint Fictional Hospital",
    "ReferringPhysicianName": "Who^Doctor",
    "OtherPatientIDs": "ALT-12345-ID",
}


def test_patient_identifiers_never_leave_the_dicom(tmp_path, run_prepare, write_dicom, synthetic_breast):
    pixels = synthetic_breast(600, 800, chest_wall="right", seed=3)
    write_dicom(tmp_path / "in" / "exam.dcm", pixels, ImageLaterality="R", ViewPosition="CC", PixelSpacing=[0.1, 0.1],
                Manufacturer="ACME", **FAKE_IDENTIFIERS)
    code, out = run_prepare(tmp_path / "p.config", kind="dicom", input_dir="in", patch_size=32)  # every output kind
    assert code == 0
    record = _record(out, "exam")
    assert re.fullmatch(r"p[0-9a-f]{16}", record["patient_id"])
    assert record["metadata"]["PixelSpacing"] == [0.1, 0.1] and record["metadata"]["Manufacturer"] == "ACME"
    assert record["patches"] and (out / record["split"] / "lr_x4" / "exam.png").is_file()
    needles = set(FAKE_IDENTIFIERS.values()) | {"Doe^Jane", "FAKE-4711", "1958-03-17", "2019-05-22"}
    text_needles = needles | {"Jane", "Fictional", "19580317"[:6]}  # case-insensitive in text files only
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".png", ".json", ".csv", ".jsonl", ".log", ".config"}
    for path in files:
        content = path.read_bytes()
        for needle in needles:  # exact bytes: long enough never to occur by chance in compressed PNG data
            assert needle.encode() not in content, f"{needle!r} leaked into {path}"
        if path.suffix != ".png":
            text = content.decode("utf-8").lower()
            leaked = [n for n in text_needles if n.lower() in text]
            assert not leaked, f"{leaked} leaked into {path}"
        assert not any(n.lower() in part.lower() for part in path.relative_to(out).parts for n in text_needles)

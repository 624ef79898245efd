"""INbreast XML → annotations.json, INbreast.csv/.xls → metadata, merged_data.json, matching, masks.

Real files from ../shared/data/inbreast; the DICOMs (not redistributable, >17 MB) are replaced by
synthetic ones with INbreast names and pixel grid, so mask alignment can be checked exactly.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from mammogan.data.images import read_image, read_mask
from mammogan.data.inbreast import (
    ROI_FIELDS,
    lesions_from_rois,
    match_images,
    merge,
    parse_name,
    read_annotations,
    read_metadata,
)

# (Name, Type, NumberOfPoints) of every ROI, in file order, for each genuine XML in ../shared/data.
EXPECTED_ROIS = {
    "20587148": [("Calcification", 19, 1), ("Calcification", 15, 7), ("Calcification", 15, 7)],
    "20587294": [("Calcification", 19, 1), ("Calcification", 19, 1)],
    "20588308": [("Mass", 15, 115)],
    "22427682": [("Calcification", 15, 7), ("Calcification", 15, 5), ("Calcification", 15, 8)],
    "22614074": [("Mass", 15, 150), ("Calcification", 15, 8)],
    "50998634": [("Calcification", 19, 1)] * 4 + [("Distortion", 9, 200)] + [("Calcification", 19, 1)] * 2,
}
REALS = ("Area", "Dev", "Max", "Min", "Mean", "Total")
INTEGERS = ("IndexInImage", "NumberOfPoints", "Type")


@pytest.fixture
def inbreast(shared_data: Path) -> Path:
    folder = shared_data / "inbreast"
    if not (folder / "AllXML").is_dir():
        pytest.skip(f"{folder}/AllXML not found")
    return folder


def _check_typed_roi(roi: dict, expected: tuple[str, int, int], index: int) -> None:
    assert list(roi) == list(ROI_FIELDS)  # exactly these fields, in this order
    name, roi_type, count = expected
    assert (roi["Name"], roi["Type"], roi["NumberOfPoints"], roi["IndexInImage"]) == (name, roi_type, count, index)
    assert all(type(roi[k]) is float for k in REALS)
    assert all(type(roi[k]) is int for k in INTEGERS)
    assert len(roi["Point_px"]) == count and all(len(p) == 2 and all(type(v) is float for v in p) for p in roi["Point_px"])
    assert len(roi["Point_mm"]) == count and all(p == [0.0, 0.0, 0.0] for p in roi["Point_mm"])
    assert roi["Center"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("file_id", sorted(EXPECTED_ROIS))
def test_every_genuine_xml_gives_exact_typed_rois(inbreast, file_id):
    if not (inbreast / "AllXML" / f"{file_id}.xml").is_file():
        pytest.skip(f"{file_id}.xml not in this copy of the shared data")
    annotations = read_annotations(inbreast / "AllXML")
    assert annotations.problems == []
    entry = json.loads(json.dumps(annotations.entries[file_id]))  # types survive the JSON round trip
    assert entry["NumberOfROIs"] == len(EXPECTED_ROIS[file_id]) == len(entry["ROIs"])
    for index, (roi, expected) in enumerate(zip(entry["ROIs"], EXPECTED_ROIS[file_id])):
        _check_typed_roi(roi, expected, index)


def test_point_values_are_parsed_exactly(inbreast):
    entries = read_annotations(inbreast / "AllXML").entries
    assert entries["20587294"]["ROIs"][1]["Point_px"] == [[1574.920044, 2655.090088]]
    mass = entries["22614074"]["ROIs"][0]
    assert mass["Point_px"][:2] == [[1988.48999, 1726.079956], [1999.839966, 1727.109985]]
    assert mass["Area"] == pytest.approx(5.213857173919678) and mass["Max"] == 2113.0


def test_rois_become_lesions_by_type_and_name(inbreast):
    rois = read_annotations(inbreast / "AllXML").entries["50998634"]["ROIs"]
    lesions = lesions_from_rois(rois)
    assert Counter(l.lesion_class for l in lesions) == {"calcification": 6, "other": 1}
    points = [l for l in lesions if l.center is not None]
    assert len(points) == 6 and all(l.points is None and l.radius is None for l in points)
    assert points[0].center == pytest.approx((477.416992, 1602.359985))
    (ellipse,) = [l for l in lesions if l.points]
    assert ellipse.label == "Distortion" and len(ellipse.points) == 200
    mass = lesions_from_rois(read_annotations(inbreast / "AllXML").entries["20588308"]["ROIs"])
    assert [(l.lesion_class, len(l.points)) for l in mass] == [("mass", 115)]


def _corrupt(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) >= 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_malformed_files_and_rois_are_skipped_with_named_warnings(inbreast, tmp_path):
    folder = tmp_path / "AllXML"
    shutil.copytree(inbreast / "AllXML", folder)
    _corrupt(folder / "20587294.xml", "(1046.260010, 1552.729980)", "(1046.260010; oops)")  # ROI 0 point unreadable
    _corrupt(folder / "20587148.xml", "<integer>3</integer>", "<integer>4</integer>")  # NumberOfROIs says 4, holds 3
    text = (folder / "22427682.xml").read_text()
    second_roi = text.index("<key>IndexInImage</key>\n\t\t\t\t\t<integer>1</integer>")
    type_key = text.index("<key>Type</key>", second_roi)
    (folder / "22427682.xml").write_text(text[:type_key] + text[text.index("</integer>", type_key) + 10 :])  # ROI 1 lacks Type
    _corrupt(folder / "22614074.xml", "<string>Calcification</string>", "<integer>7</integer>")  # ROI 1 Name not a string
    raw = (folder / "20588308.xml").read_bytes()
    (folder / "20588308.xml").write_bytes(raw[: len(raw) // 2])  # truncated XML
    (folder / "notes.xml").write_text("<?xml version='1.0'?><notes><note>not a plist</note></notes>")
    (folder / "empty.xml").write_bytes(b"")

    annotations = read_annotations(folder)  # never raises for bad content
    problems = annotations.problems
    assert len(problems) == 7, problems
    assert sorted(annotations.entries) == ["20587148", "20587294", "22427682", "22614074", "50998634"]
    assert any("20587294.xml: ROI 0: skipped" in p and "Point_px" in p for p in problems)
    assert any("20587148.xml: NumberOfROIs = 4 but the file holds 3 ROIs" in p for p in problems)
    assert any("22427682.xml: ROI 1: skipped, field Type is missing" in p for p in problems)
    assert any("22614074.xml: ROI 1: skipped, field Name" in p for p in problems)
    for bad in ("20588308.xml", "notes.xml", "empty.xml"):
        assert any(bad in p and "skipped" in p for p in problems), bad
    entries = annotations.entries
    assert entries["20587294"]["NumberOfROIs"] == 1 and entries["20587294"]["ROIs"][0]["IndexInImage"] == 1
    assert entries["20587148"]["NumberOfROIs"] == 3
    assert [r["IndexInImage"] for r in entries["22427682"]["ROIs"]] == [0, 2]
    assert [r["Name"] for r in entries["22614074"]["ROIs"]] == ["Mass"]


def test_csv_quirks(inbreast):
    metadata = read_metadata(inbreast / "INbreast.csv")
    assert len(metadata) == 410
    assert metadata["53582540"].density is None  # whitespace-only ACR
    assert all(m.patient_id is None for m in metadata.values())  # "removed"
    assert all(m.birads is not None for m in metadata.values())  # last column: no CR left over from CRLF
    birads = Counter(m.birads for m in metadata.values())
    assert (birads["4a"], birads["4b"], birads["4c"], birads["2"]) == (13, 8, 22, 220)
    assert Counter(m.density for m in metadata.values()) == {1: 136, 2: 146, 3: 99, 4: 28, None: 1}
    assert Counter(m.view for m in metadata.values()) == {"MLO": 206, "CC": 203, "FB": 1}
    assert Counter(m.laterality for m in metadata.values()) == {"L": 209, "R": 201}
    assert all(m.findings == {"mass": None, "micros": None, "distortion": None, "asymmetry": None} for m in metadata.values())


def test_xls_quirks_match_the_csv(inbreast):
    xls = read_metadata(inbreast / "INbreast.xls")
    csv = read_metadata(inbreast / "INbreast.csv")
    assert sorted(xls) == sorted(csv)  # 410: blank and totals rows dropped, File Name floats → ids
    for file_id, row in csv.items():
        other = xls[file_id]
        assert (other.laterality, other.view, other.density, other.birads) == (row.laterality, row.view, row.density, row.birads)
    flags = {name: sum(m.findings[name] for m in xls.values()) for name in ("mass", "micros", "distortion", "asymmetry")}
    assert flags == {"mass": 108, "micros": 308, "distortion": 3, "asymmetry": 14}  # the sheet's own totals row ('Mass ')
    assert xls["22614074"].findings == {"mass": True, "micros": True, "distortion": False, "asymmetry": False}


def test_merge_keeps_every_image_and_uses_null_for_unknowns(inbreast):
    annotations = read_annotations(inbreast / "AllXML").entries
    merged = merge(annotations, read_metadata(inbreast / "INbreast.xls"))
    assert len(merged) == 410
    entry = merged["22614074"]
    assert (entry["laterality"], entry["view"], entry["acr"], entry["birads"]) == ("R", "CC", 2, "5")
    assert entry["annotated"] and entry["in_metadata"] and entry["NumberOfROIs"] == 2
    assert [r["Name"] for r in entry["ROIs"]] == ["Mass", "Calcification"]
    normal = merged["22678622"]
    assert not normal["annotated"] and normal["NumberOfROIs"] is None and normal["ROIs"] == []
    assert merged["53582540"]["acr"] is None
    without_metadata = merge(annotations, {})
    assert sorted(without_metadata) == sorted(annotations)
    assert without_metadata["50998634"]["laterality"] is None and without_metadata["50998634"]["findings"]["mass"] is None


def test_file_names_and_matching():
    name = parse_name("20586908_6c613a14b80a8591_MG_R_CC_ANON")
    assert (name.file_id, name.patient_hash, name.laterality, name.view) == ("20586908", "6c613a14b80a8591", "R", "CC")
    name = parse_name("20586934_6c613a14b80a8591_MG_L_ML_ANON")
    assert (name.file_id, name.patient_hash, name.laterality, name.view) == ("20586934", "6c613a14b80a8591", "L", "MLO")
    assert parse_name("22678622").file_id == "22678622" and parse_name("22678622").laterality is None
    assert parse_name("scout") is None
    merged = {"1": {"annotated": True, "in_metadata": True}, "2": {"annotated": False, "in_metadata": True},
              "3": {"annotated": True, "in_metadata": False}}
    paths = [Path("1_aa_MG_L_CC_ANON.dcm"), Path("2_bb_MG_R_CC_ANON.dcm"), Path("2.png"), Path("9.png"), Path("x.png")]
    report, images = match_images(paths, merged)
    assert report.matched == {"1": "1_aa_MG_L_CC_ANON.dcm", "2": "2.png"}
    assert report.images_without_annotations == ["2.png", "9.png"]
    assert report.images_without_metadata == ["9.png"]
    assert report.annotations_without_images == ["3"]
    assert report.unrecognised_images == ["x.png"] and report.duplicate_images == ["2_bb_MG_R_CC_ANON.dcm"]
    assert sorted(images) == ["1", "2", "9"]


# --- end to end: `mammogan prepare` with kind = "inbreast" ------------------------------------------------------

WIDTH, HEIGHT, SPACING_MM = 2560, 3328, 0.07  # an INbreast pixel grid
BROKEN = "22614074"  # annotated, but its file cannot be decoded
IMAGES = {  # file id → (laterality, patient hash); 22678622 is a normal image without XML
    "20587148": ("R", "aa11bb22cc33dd44"),
    "22678622": ("R", "aa11bb22cc33dd44"),
    "50998634": ("L", "ee55ff6600778899"),
}


def _expected_mask(rois: list[dict], classes: set[str], record: dict, radius_px: float) -> np.ndarray:
    """Rasterise ROIs on the full DICOM grid, then apply the record's flip, crop and resize."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    for lesion in lesions_from_rois(rois):
        if lesion.lesion_class not in classes:
            continue
        if lesion.center is not None:
            cv2.circle(mask, tuple(int(round(v)) for v in lesion.center), int(round(radius_px)), 255, -1)
        else:
            cv2.fillPoly(mask, [np.round(np.array(lesion.points)).astype(np.int32)], 255)
    if record["flipped"]:
        mask = mask[:, ::-1]
    x0, y0, x1, y1 = record["crop_box"]
    crop = mask[y0:y1, x0:x1].astype(np.float32) / 255
    width, height = record["size"]
    size = (round(crop.shape[1] * record["resize"]), round(crop.shape[0] * record["resize"]))
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)[:height, :width] >= 0.5


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_prepare_inbreast_end_to_end(inbreast, tmp_path, run_prepare, write_dicom, synthetic_breast):
    for file_id, (side, patient_hash) in IMAGES.items():
        pixels = synthetic_breast(WIDTH, HEIGHT, chest_wall="left" if side == "L" else "right", seed=int(file_id) % 97)
        write_dicom(tmp_path / "in" / f"{file_id}_{patient_hash}_MG_{side}_CC_ANON.dcm", pixels,
                    ImageLaterality=side, ViewPosition="CC", PixelSpacing=[SPACING_MM, SPACING_MM])
    cv2.imwrite(str(tmp_path / "in" / "scout.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "in" / f"{BROKEN}_0123456789abcdef_MG_R_CC_ANON.dcm").write_bytes(b"not a DICOM file")  # annotated, undecodable
    code, out = run_prepare(tmp_path / "p.config", kind="inbreast", input_dir="in",
                            annotations_dir=str(inbreast / "AllXML"), metadata_file=str(inbreast / "INbreast.xls"),
                            max_size=1024, point_radius=1.0, point_radius_unit="mm", on_error="skip",
                            sr_scales=[2], normal_patches_per_image=0, split_ratios=[0.5, 0.5, 0.0])
    assert code == 0

    annotations = json.loads((out / "annotations.json").read_text())
    assert {k: v["NumberOfROIs"] for k, v in annotations.items()} == \
        {k: len(v) for k, v in EXPECTED_ROIS.items() if (inbreast / "AllXML" / f"{k}.xml").is_file()}
    merged = json.loads((out / "merged_data.json").read_text())
    assert len(merged) == 410 and merged["20587148"]["findings"]["micros"] is True
    report = json.loads((out / "match_report.json").read_text())  # input files, before preparing
    assert sorted(report["matched"]) == sorted([*IMAGES, BROKEN])
    assert report["images_without_annotations"] == ["22678622_aa11bb22cc33dd44_MG_R_CC_ANON.dcm"]
    assert report["annotations_without_images"] == sorted(set(annotations) - set(IMAGES) - {BROKEN})
    assert report["unrecognised_images"] == ["scout.png"] and report["annotation_problems"] == []

    records = {i: json.loads((out / ".records" / f"{i}.json").read_text()) for i in IMAGES}
    assert records["20587148"]["split"] == records["22678622"]["split"]  # same patient hash, same split
    assert records["20587148"]["patient_id"] == records["22678622"]["patient_id"] != records["50998634"]["patient_id"]
    assert records["20587148"]["flipped"] and not records["50998634"]["flipped"]
    assert records["20587148"]["metadata"]["birads"] == "2" and records["22678622"]["lesions"] == []

    # matchPNG after the run: every prepared PNG links back to its entry; the file that failed is reported.
    png_report = json.loads((out / "match_png.json").read_text())
    assert png_report["matched"] == {i: f"{i}.png" for i in sorted(IMAGES)}
    assert png_report["images_without_annotations"] == ["22678622.png"]
    assert png_report["annotations_without_images"] == sorted(set(annotations) - set(IMAGES))  # BROKEN included
    assert BROKEN in png_report["annotations_without_images"] and png_report["unrecognised_images"] == []
    assert match_images(list(out.glob("*/images/*.png")), merged)[0].as_dict() == png_report

    for file_id, classes, minimum_iou in (("20587148", {"calcification"}, 0.7), ("50998634", {"other"}, 0.9),
                                          ("50998634", {"calcification"}, 0.6)):
        record = records[file_id]
        name = "masks_" + next(iter(classes))
        mask = read_mask(out / record["split"] / name / f"{file_id}.png") > 0
        radius_px = 1.0 / SPACING_MM
        expected = _expected_mask(annotations[file_id]["ROIs"], classes, record, radius_px)
        assert mask.shape == expected.shape
        assert _iou(mask, expected) >= minimum_iou, (file_id, classes, _iou(mask, expected))
    calcifications = read_mask(out / records["50998634"]["split"] / "masks_calcification" / "50998634.png") > 0
    count, labels = cv2.connectedComponents(calcifications.astype(np.uint8))
    assert count - 1 == 4  # six 1 mm disks; three points of one cluster lie within 10 px (0.7 mm) and merge
    record = records["50998634"]  # not flipped: source (x, y) → ((x - x0) * resize, (y - y0) * resize)
    x0, y0 = record["crop_box"][:2]
    x, y = ((np.array([477.416992, 1602.359985]) - [x0, y0]) * record["resize"]).round().astype(int)
    isolated_disk = (labels == labels[y, x]).sum()
    assert labels[y, x] > 0
    assert isolated_disk == pytest.approx(np.pi * (1.0 / SPACING_MM * record["resize"]) ** 2, rel=0.35)
    any_mask = read_mask(out / records["50998634"]["split"] / "masks" / "50998634.png") > 0
    other = read_mask(out / records["50998634"]["split"] / "masks_other" / "50998634.png") > 0
    assert np.array_equal(any_mask, calcifications | other)
    image = read_image(out / records["50998634"]["split"] / "images" / "50998634.png")
    assert image.dtype == np.uint16 and image[any_mask].mean() > 0.3 * 65535  # lesions land inside the breast

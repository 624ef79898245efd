"""Fault injection for the data commands (`prepare`, `augment`).

Bad annotations fail their image instead of becoming wrong labels, batches finish the good items,
unwritable output folders are refused before any work, leftovers of killed runs are cleaned up, and a
run killed at a random point leaves only whole files and resumes to exactly a clean run's result.

Every case runs the `mammogan` command in a subprocess on tiny inputs made in tmp_path from the bundled
MIAS sample, and checks the exit code, that the message names the file or key, that stderr holds no
traceback (and no OpenCV log lines), the exact good items finished, and that nothing finished is rewritten.
"""

from __future__ import annotations

import csv
import json
import os
import plistlib
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from mammogan.config.types import toml_literal
from mammogan.data.images import read_image, write_png

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample" / "mias"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "2"}
FAST = {"sr_scales": [], "normal_patches_per_image": 2, "patch_size": 32, "patch_zooms": [1.0],
        "split_ratios": [1.0, 0.0, 0.0]}
GOOD = ("mdb002", "mdb010")  # the images that stay good in every MIAS case; mdb001 is the one damaged
HFLIP_ONLY = {"hflip": True, "vflip": False, "rotation_angles": [], "shrink_ratios": [], "shear_factors": [], "elastic": [],
              "grid_distortion": [], "barrel_amounts": [], "pincushion_amounts": []}


# --- running the command ---------------------------------------------------------------------------------------


def mammogan(command: str, config: Path, prefix: tuple[str, ...] = (), umask: int = -1) -> subprocess.CompletedProcess:
    """`mammogan <command> <config>` in a fresh process (optionally under a wrapper command and umask)."""
    return subprocess.run([*prefix, sys.executable, "-m", "mammogan", command, str(config)], cwd=config.parent,
                          env=ENV, capture_output=True, text=True, timeout=300, umask=umask)


def report(done: subprocess.CompletedProcess) -> str:
    """stderr on one line (the CLI wraps long messages), after checking it holds only the tool's own words."""
    assert "Traceback" not in done.stderr, done.stderr
    assert "[ WARN" not in done.stderr and "[ERROR" not in done.stderr, done.stderr  # OpenCV's own log
    return " ".join(done.stderr.split())


def failures(text: str) -> str:
    """The list of failed files printed at the end of a batch."""
    assert "could not be" in text, text
    return text.rsplit("could not be", 1)[1]


def write_config(folder: Path, section: str, **keys: object) -> Path:
    path = folder / f"{section}.config"
    path.write_text(f"[{section}]\n" + "".join(f"{k} = {toml_literal(v)}\n" for k, v in keys.items()), encoding="utf-8")
    return path


def prepare_config(folder: Path, **keys: object) -> Path:
    return write_config(folder, "prepare", **{"output_dir": "out", **keys})


def augment_config(folder: Path, dataset: Path, **keys: object) -> Path:
    """[generator] with one flip per source, unless `keys` say otherwise."""
    return write_config(folder, "generator", **{"input_dir": str(dataset), "output_dir": "augmented", **HFLIP_ONLY, **keys})


def inodes(folder: Path) -> dict[str, int]:
    """Inode of every PNG: an atomic rewrite (a rename onto the name) changes it."""
    return {str(p.relative_to(folder)): p.stat().st_ino for p in folder.rglob("*") if p.is_file() and p.suffix == ".png"}


def written_of(folder: Path, image_id: str) -> list[Path]:
    """Every PNG made from one image: the image, its masks and LR, its lesion and healthy patches."""
    return sorted(folder.rglob(f"{image_id}*.png"))


def records(out: Path) -> list[str]:
    return sorted(p.stem for p in (out / ".records").glob("*.json"))


# --- inputs ----------------------------------------------------------------------------------------------------


def mias_input(tmp_path: Path, rows: dict[str, str | None], ids: tuple[str, ...] = ("mdb001", *GOOD)) -> dict[str, object]:
    """Sample PGMs of `ids` in in/, and an Info.txt whose rows of each image in `rows` are replaced by
    the given text (None: the image has no row); returns the [prepare] keys."""
    (tmp_path / "in").mkdir()
    for image_id in ids:
        (tmp_path / "in" / f"{image_id}.pgm").symlink_to(SAMPLE / f"{image_id}.pgm")
    lines = [line for line in (SAMPLE / "Info.txt").read_text(encoding="latin-1").splitlines()
             if not any(line.startswith(image_id) for image_id in rows)]
    (tmp_path / "Info.txt").write_text("\n".join(lines + [row for row in rows.values() if row]) + "\n", encoding="latin-1")
    return {"kind": "mias", "input_dir": "in", "info_file": "Info.txt", **FAST}


def sample_image(image_id: str) -> np.ndarray:
    return read_image(SAMPLE / f"{image_id}.pgm")


# --- bad annotations fail their image --------------------------------------------------------------------------

MIAS_FAULTS = {  # Info.txt text of mdb001 → words of the failure
    "non-numeric coordinate": ("mdb001 G CIRC B 535 4x5 197", "coordinates ['535', '4x5', '197'] are not numbers"),
    "missing radius": ("mdb001 G CIRC B 535 425", "expected the coordinates X Y RADIUS (or none), got '535 425'"),
    "out-of-frame coordinate": ("mdb001 G CIRC B 535 1425 197", "the mass lesion 'CIRC' lies outside the 1024x1024 frame"),
    "garbled row": ("mdb001 G CRIC B 535 425 197", "unreadable MIAS row 'mdb001 G CRIC B 535 425 197'"),
    "no row": (None, "image mdb001 has no row in"),
}


@pytest.mark.parametrize("fault", list(MIAS_FAULTS))
def test_a_bad_info_row_fails_its_image_and_the_batch_finishes(tmp_path, fault):
    row, words = MIAS_FAULTS[fault]
    keys = mias_input(tmp_path, {"mdb001": row})
    done = mammogan("prepare", prepare_config(tmp_path, **keys))
    assert done.returncode == 2
    text = report(done)
    failed = failures(text)
    assert words in failed and str(tmp_path / "in" / "mdb001.pgm") in failed and str(tmp_path / "Info.txt") in failed
    assert "2 images written, 0 already done, 1 failed" in text
    out = tmp_path / "out"
    assert records(out) == list(GOOD)
    assert written_of(out, "mdb001") == []  # no image, no empty mask, no healthy patch
    assert all(written_of(out, image_id) for image_id in GOOD)
    assert f"319 of its {322 - (row is None)} images are not in" in text  # rows of images not given are no fault

    # on_error = "skip": the same report and exit 0; the finished images are not redone.
    before = inodes(out)
    done = mammogan("prepare", prepare_config(tmp_path, **keys, on_error="skip"))
    assert done.returncode == 0
    text = report(done)
    assert words in failures(text) and "0 images written, 2 already done, 1 failed" in text
    assert inodes(out) == before


def test_the_fixed_image_is_prepared_and_nothing_finished_is_redone(tmp_path):
    keys = mias_input(tmp_path, {"mdb001": MIAS_FAULTS["non-numeric coordinate"][0]})
    assert mammogan("prepare", prepare_config(tmp_path, **keys)).returncode == 2
    before = inodes(tmp_path / "out")
    (tmp_path / "Info.txt").write_text((tmp_path / "Info.txt").read_text(encoding="latin-1").replace("4x5", "425"),
                                       encoding="latin-1")
    done = mammogan("prepare", prepare_config(tmp_path, **keys))
    assert done.returncode == 0
    assert "1 images written, 2 already done, 0 failed" in report(done)
    after = inodes(tmp_path / "out")
    assert {k: v for k, v in after.items() if k in before} == before  # the good images' files untouched
    assert records(tmp_path / "out") == ["mdb001", *GOOD]


def test_a_lesion_without_a_place_gives_no_healthy_patches(tmp_path):
    keys = mias_input(tmp_path, {"mdb001": "mdb001 G CIRC B"})  # as mdb059 in the original: no coordinates
    done = mammogan("prepare", prepare_config(tmp_path, **keys))
    assert done.returncode == 0, done.stderr
    assert "3 images written, 0 already done, 0 failed" in report(done)
    record = json.loads((tmp_path / "out" / ".records" / "mdb001.json").read_text())
    assert [lesion["label"] for lesion in record["lesions"]] == ["CIRC (no coordinates)"] and record["patches"] == []
    assert [p.name for p in written_of(tmp_path / "out" / "patches", "mdb001")] == []  # any window could hold the mass
    assert len(list((tmp_path / "out" / "patches").rglob("mdb002_normal*.png"))) == 2 * 2  # image and mask


def _roi(points: list[tuple[float, float]], index: int) -> dict[str, object]:
    """One OsiriX ROI as INbreast stores it (polygon, Type 15)."""
    return {"Area": 1.0, "Center": "(0, 0, 0)", "Dev": 0.0, "IndexInImage": index, "Max": 1.0, "Mean": 1.0, "Min": 0.0,
            "Name": "Mass", "NumberOfPoints": len(points), "Point_mm": ["(0, 0, 0)"] * len(points),
            "Point_px": [f"({x}, {y})" for x, y in points], "Total": 1.0, "Type": 15}


def _inbreast_xml(rois: list[dict[str, object]]) -> bytes:
    return plistlib.dumps({"Images": [{"ImageIndex": 0, "NumberOfROIs": len(rois), "ROIs": rois}]})


@pytest.mark.parametrize("damage", ["truncated XML", "ROI without points"])
def test_an_unreadable_inbreast_annotation_fails_its_image(tmp_path, damage):
    images = {"1001": "mdb002", "1002": "mdb010", "1003": "mdb012"}  # INbreast ids → sample films (PNG copies)
    (tmp_path / "in").mkdir()
    (tmp_path / "AllXML").mkdir()
    square = [(230.0, 230.0), (290.0, 230.0), (290.0, 290.0), (230.0, 290.0)]
    for file_id, image_id in images.items():
        write_png(tmp_path / "in" / f"{file_id}.png", sample_image(image_id))
        (tmp_path / "AllXML" / f"{file_id}.xml").write_bytes(_inbreast_xml([_roi(square, 0)]))
    broken = tmp_path / "AllXML" / "1002.xml"
    if damage == "truncated XML":
        broken.write_bytes(broken.read_bytes()[:400])
    else:
        broken.write_bytes(_inbreast_xml([_roi(square, 0), {**_roi(square, 1), "Point_px": [], "NumberOfPoints": 0}]))
    done = mammogan("prepare", prepare_config(tmp_path, kind="inbreast", input_dir="in", annotations_dir="AllXML", **FAST))
    assert done.returncode == 2
    failed = failures(report(done))
    assert f"{tmp_path / 'in' / '1002.png'}: its annotation cannot be read: {broken}" in failed
    assert ("not a readable OsiriX plist XML" if damage == "truncated XML" else "ROI 1: skipped, Point_px holds no points") in failed
    out = tmp_path / "out"
    assert records(out) == ["1001", "1003"]
    assert written_of(out, "1002") == []  # above all, no "normal" patches from it
    assert len(list((out / "patches").rglob("1001_mass0_z1.png"))) == 2


# CBIS-DDSM: one good image and one with a half-size mask (a known quirk, scaled), and four that must fail.
CBIS_COLUMNS = ["patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
                "abnormality type", "mass shape", "mass margins", "assessment", "pathology", "subtlety",
                "image file path", "cropped image file path", "ROI mask file path"]


def _cbis_row(patient: int, abnormality_type: str = "mass") -> list[str]:
    case = f"Mass-Training_P_{patient:05d}_LEFT_CC"
    return [f"P_{patient:05d}", "2", "LEFT", "CC", "1", abnormality_type, "OVAL", "CIRCUMSCRIBED", "4", "BENIGN", "3",
            f"{case}/1.3.6.1/1.3.6.2/000000.dcm", f"{case}_1/1.3.6.1/1.3.6.3/000000.dcm",
            f"{case}_1/1.3.6.1/1.3.6.3/000001.dcm\n"]


def _cbis_mask(width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (width // 2, height // 2), max(4, width // 20), 255, -1)
    return mask


def test_cbis_rows_and_masks_that_cannot_be_read_fail_their_image(tmp_path):
    root = tmp_path / "images"
    rows = [_cbis_row(patient) for patient in range(1, 8)]
    rows[3] = _cbis_row(4, abnormality_type="masss")
    masks = {1: _cbis_mask(512, 512), 3: _cbis_mask(256, 512), 5: _cbis_mask(512, 512), 6: _cbis_mask(256, 256),
             7: _cbis_mask(512, 512)}
    films = ("mdb002", "mdb010", "mdb012", "mdb024", "mdb028", "mdb006", "mdb024")
    for number, (row, film) in enumerate(zip(rows, films), 1):
        write_png((root / row[11]).with_suffix(".png"), sample_image(film))
        mask_file = (root / row[13].strip()).with_suffix(".png")
        if number in masks:
            write_png(mask_file, masks[number])
        elif number == 2:
            mask_file.parent.mkdir(parents=True)
            mask_file.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))  # a damaged PNG
    with (tmp_path / "mass.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        # Patient 7's second abnormality and one of a patient without images name no image file; patient 5's
        # row is cut after its image path.
        pathless = [[*row[:11], "", *row[12:]] for row in (_cbis_row(7), _cbis_row(99))]
        writer.writerows([CBIS_COLUMNS, *rows[:4], rows[5], rows[6], *pathless, rows[4][:12]])
    done = mammogan("prepare", prepare_config(tmp_path, kind="cbis", input_dir="images", metadata_file="mass.csv", **FAST))
    assert done.returncode == 2
    text = report(done)
    failed = failures(text)
    image = {n: (root / rows[n - 1][11]).with_suffix(".png") for n in range(1, 8)}
    assert f"{image[2]}: the ROI mask of its mass 1 cannot be read: " in failed and "not a readable image" in failed
    assert (f"{(root / rows[2][13].strip()).with_suffix('.png')}: ROI mask is 256x512 but its image {image[3]} is 512x512 "
            "(another aspect ratio, so not a scaled copy)") in failed
    assert f"{image[4]}: its table rows cannot be read: {tmp_path / 'mass.csv'}:9: abnormality type 'masss' is not mass" in failed
    assert f"{image[5]}: its table rows cannot be read: {tmp_path / 'mass.csv'}:18: the row has 12 cells, the header 14" in failed
    assert f"{image[7]}: its table rows cannot be read: {tmp_path / 'mass.csv'}:15: the image file path is empty" in failed
    assert f"{tmp_path / 'mass.csv'}:17: the image file path is empty; it names no image of the tables" in text  # a warning
    assert "2 images written, 0 already done, 5 failed" in text
    out = tmp_path / "out"
    assert records(out) == ["Mass-Training_P_00001_LEFT_CC", "Mass-Training_P_00006_LEFT_CC"]
    for number in (2, 3, 4, 5, 7):
        assert written_of(out, f"Mass-Training_P_{number:05d}") == []
    half = json.loads((out / ".records" / "Mass-Training_P_00006_LEFT_CC.json").read_text())
    assert half["lesion_pixels"]["mass"] > 0  # the half-size mask is scaled onto its image


# --- batches finish the good items, whatever one file does ------------------------------------------------------


def test_unreadable_images_get_the_tools_message_alone(tmp_path, prepared_sample):
    (tmp_path / "in").mkdir()
    write_png(tmp_path / "in" / "good.png", sample_image("mdb002"))
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (tmp_path / "in" / "cut.pgm").write_bytes((SAMPLE / "mdb010.pgm").read_bytes()[:5000])
    done = mammogan("prepare", prepare_config(tmp_path, kind="images", input_dir="in", **FAST))
    assert done.returncode == 2
    text = report(done)  # no OpenCV "[ WARN ]" / "[ERROR]" line before the tool's own message
    failed = failures(text)
    for name in ("broken.png", "cut.pgm"):
        assert f"{tmp_path / 'in' / name}: not a readable image" in failed
    assert records(tmp_path / "out") == ["good"]

    dataset = tmp_path / "dataset"
    shutil.copytree(prepared_sample / "train", dataset / "train")
    shutil.copy(prepared_sample / "manifest.json", dataset)
    names = sorted(p.name for p in (dataset / "train" / "images").iterdir())
    (dataset / "train" / "images" / names[0]).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    done = mammogan("augment", augment_config(tmp_path, dataset))
    assert done.returncode == 2
    assert f"{dataset / 'train' / 'images' / names[0]}: not a readable image" in failures(report(done))
    assert sorted(p.name for p in (tmp_path / "augmented" / "train" / "images").iterdir()) == \
        sorted(name for source in names[1:] for name in (source, source.replace(".png", "_hflip.png")))


# --- output folders that cannot be written ----------------------------------------------------------------------


def _read_only_runner(folder: Path) -> tuple[str, ...]:
    """Make `folder` read-only for the command: by permissions for a normal user, and for root (whom
    permission bits do not stop) by a read-only tmpfs over it, mounted in a private mount namespace of the
    command alone, so it is gone when the command ends. Returns the prefix to run the command with."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return ()
    prefix = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs -o ro,size=1m tmpfs "$0" && exec "$@"', str(folder))
    if shutil.which("unshare") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root without a way to mount a read-only folder (unshare --mount)")
    return prefix


@pytest.mark.parametrize("command", ["prepare", "augment"])
@pytest.mark.parametrize("blocked", ["parent is a file", "read-only folder"])
def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, prepared_sample, command, blocked):
    prefix: tuple[str, ...] = ()
    if blocked == "parent is a file":
        (tmp_path / "taken").write_text("a file where a folder is expected\n")
        output = tmp_path / "taken" / "out"
        reason = f"{tmp_path / 'taken'} is a file, not a folder"
    else:
        (tmp_path / "locked").mkdir()
        output = tmp_path / "locked" / "out"
        prefix = _read_only_runner(tmp_path / "locked")
        reason = "Read-only file system" if prefix else "Permission denied"
    if command == "prepare":
        config = prepare_config(tmp_path, **{**mias_input(tmp_path, {}), "output_dir": str(output)})
        key = "[prepare] output_dir"
    else:
        config = augment_config(tmp_path, prepared_sample, output_dir=str(output))
        key = "[generator] output_dir"
    try:
        done = mammogan(command, config, prefix)
    finally:
        if (tmp_path / "locked").exists():
            (tmp_path / "locked").chmod(0o755)
    assert done.returncode == 2
    assert f"Error: {config}: {key} = {output}: cannot write there ({reason})." in report(done)
    assert not output.exists()
    if blocked == "parent is a file":
        assert (tmp_path / "taken").read_text() == "a file where a folder is expected\n"


# --- leftovers of killed runs, summaries, file modes ------------------------------------------------------------


def _plant_temps(folder: Path) -> tuple[list[Path], Path]:
    """Temporary files as a killed run leaves them, and a hidden file of the user's that must stay."""
    stale = [folder / "train" / "images" / ".mdb002.k3j9x0_q.tmp.png", folder / ".records" / ".mdb010.abcdefgh.tmp.json"]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG half")
    keep = folder / ".notes.tmp"
    keep.write_text("mine\n")
    return stale, keep


@pytest.mark.parametrize("command", ["prepare", "augment"])
def test_the_next_run_removes_the_temporary_files_of_a_killed_one(tmp_path, prepared_sample, command):
    if command == "prepare":
        config, out = prepare_config(tmp_path, **mias_input(tmp_path, {})), tmp_path / "out"
    else:
        config, out = augment_config(tmp_path, prepared_sample), tmp_path / "augmented"
    stale, keep = _plant_temps(out)
    done = mammogan(command, config)
    assert done.returncode == 0, done.stderr
    assert f"{out}: 2 temporary files left by an interrupted run removed" in report(done)
    assert not any(path.exists() for path in stale) and keep.read_text() == "mine\n"
    assert not [p for p in out.rglob("*") if ".tmp" in p.name and p != keep]


@pytest.mark.parametrize("command", ["prepare", "augment"])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, prepared_sample, command):
    if command == "prepare":
        config, out, umask = prepare_config(tmp_path, **mias_input(tmp_path, {})), tmp_path / "out", 0o002
    else:
        config, out, umask = augment_config(tmp_path, prepared_sample), tmp_path / "augmented", 0o027
    assert mammogan(command, config, umask=umask).returncode == 0
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    key = modes.pop(".pseudonym_key", None)
    assert set(modes.values()) == {0o666 & ~umask}, {n: oct(m) for n, m in modes.items() if m != 0o666 & ~umask}
    assert key == (0o600 if command == "prepare" else None)  # the pseudonym key stays the owner's secret


# --- SIGKILL at a random point ----------------------------------------------------------------------------------


def _kill_at_random(command: str, config: Path, out: Path, seed: int) -> None:
    """Start the command, wait for its first PNG, let it run a seeded random short while, then SIGKILL it."""
    process = subprocess.Popen([sys.executable, "-m", "mammogan", command, str(config)], cwd=config.parent, env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out.is_dir() and next(out.rglob("*.png"), None)):
            assert process.poll() is None and time.monotonic() < deadline, "the run ended before its first output"
            time.sleep(0.002)
        time.sleep(random.Random(seed).uniform(0.0, 0.25))
        assert process.poll() is None, "the run finished before the kill; give it more work"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL


def _whole_files(out: Path) -> None:
    """After the kill: every file under a final name is complete (PNGs decode, JSON parses)."""
    for path in out.rglob("*"):
        if path.is_file() and not path.name.startswith("."):  # hidden: the temporary files
            if path.suffix == ".png":
                read_image(path)
            elif path.suffix == ".json":
                json.loads(path.read_text())


def _result(out: Path, manifests: tuple[str, ...]) -> dict[str, bytes]:
    """What two runs must agree on byte for byte: every PNG, every record and the manifests (no timing
    fields in any of them; the log and resolved.config, which names the output folder, are left out)."""
    files = [p for p in out.rglob("*") if p.is_file() and (p.suffix == ".png" or p.parent.name == ".records")]
    files += [out / name for name in manifests]
    return {str(p.relative_to(out)): p.read_bytes() for p in files}


def _killed_run_ends_as_a_clean_one(command: str, config: Path, clean_config: Path, out: Path, clean: Path,
                                   manifests: tuple[str, ...], seed: int) -> None:
    """A clean run; a run killed at a random point (whole files only) and run again (no temporary file
    left, exit 0): both give the same bytes."""
    done = mammogan(command, clean_config)
    assert done.returncode == 0, done.stderr
    _kill_at_random(command, config, out, seed)
    _whole_files(out)
    done = mammogan(command, config)
    assert done.returncode == 0, done.stderr
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    assert _result(out, manifests) == _result(clean, manifests)


def test_prepare_killed_at_a_random_point_resumes_to_a_clean_runs_result(tmp_path):
    keys = {**mias_input(tmp_path, {}, ids=tuple(p.stem for p in sorted(SAMPLE.glob("*.pgm")))),
            "sr_scales": [2, 4], "sr_patch_size": 32, "normal_patches_per_image": 4, "patch_zooms": [1.0, 2.0],
            "split_ratios": [0.5, 0.25, 0.25]}
    for name in ("clean", "out"):  # one pseudonym key, so the records' fingerprints agree
        (tmp_path / name).mkdir()
        (tmp_path / name / ".pseudonym_key").write_text("ab" * 32)
    clean_config = prepare_config(tmp_path / "clean", **{**keys, "output_dir": ".", "input_dir": "../in", "info_file": "../Info.txt"})
    _killed_run_ends_as_a_clean_one("prepare", prepare_config(tmp_path, **keys), clean_config, tmp_path / "out",
                                    tmp_path / "clean", ("manifest.json", "images.csv", "patches/metadata.csv",
                                                         "patches/manifest.jsonl"), seed=20240601)


def test_augment_killed_at_a_random_point_reruns_to_a_clean_runs_result(tmp_path, prepared_sample):
    keys = {"vflip": True, "rotation_angles": [7.0, 13.0, 90.0], "elastic": [[6.0, 16.0]], "grid_distortion": [[0.3, 5.0]],
            "shear_factors": [[0.1, 0.05]], "barrel_amounts": [0.3]}  # 9 outputs of each source: a few seconds of work
    (tmp_path / "clean").mkdir()
    clean_config = augment_config(tmp_path / "clean", prepared_sample, output_dir="augmented", **keys)
    _killed_run_ends_as_a_clean_one("augment", augment_config(tmp_path, prepared_sample, **keys), clean_config,
                                    tmp_path / "augmented", tmp_path / "clean" / "augmented",
                                    ("augmentation.csv", "manifest.json"), seed=20240602)

"""Speed of `mammogan prepare` on DICOMs: images/s and MB/s of DICOM input, 1 worker vs `workers = 2`.

    .venv/bin/python benchmarks/bench_prepare.py

Inputs are the sample DICOMs in ../shared/data/dicom that decode (RSNA JPEG 2000 lossless and the
NEMA MG1 film; MG1_JPLY.dcm cannot be decoded and is left out). Each run is a whole `prepare` with
kind = "dicom" at full resolution writing what DICOM → PNG produces: the 16-bit image and its masks
(no LR images, no patches), header reads, splits, records and manifests included. Runs alternate
between 1 and 2 workers; the fastest of REPEATS runs counts (other load only slows runs down), and a
pure-Python probe before and after shows how much of a second core was free. Results:
benchmarks/results/prepare.json and prepare.md. Skips (exit 0) when the shared data is absent.
Takes about 2 minutes on 2 free cores.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pydicom
from bench_augment import parallel_probe  # this folder is on sys.path when the script runs

from mammogan.config.loader import load_config
from mammogan.config.types import toml_literal
from mammogan.data.dicom import read_dicom
from mammogan.errors import DataError
from mammogan.prepare.pipeline import run_prepare
from mammogan.core.io import atomic_write_text
from mammogan.core.logs import close_log_files

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
DICOM_DATA = REPO.parent / "shared" / "data" / "dicom"
WORKERS = (1, 2)
REPEATS = 3
COMMAND = ".venv/bin/python benchmarks/bench_prepare.py"


def decodable(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The DICOMs that decode (with size, pixels, transfer syntax and decode time), and those that do not."""
    files, skipped = [], []
    for path in sorted(folder.rglob("*.dcm")):
        start = time.perf_counter()
        try:
            image = read_dicom(path, apply_voi=True)
        except DataError:
            skipped.append(path.name)
            continue
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        files.append({"file": str(path.relative_to(folder)), "path": path, "mb": path.stat().st_size / 1e6,
                      "pixels": int(image.pixels.size), "shape": list(image.pixels.shape), "transfer_syntax": syntax.name,
                      "decode_s": time.perf_counter() - start})
    return files, skipped


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished children (the pool's workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_prepare(work: Path, inputs: Path, workers: int, run: int) -> tuple[float, float]:
    """Wall and CPU seconds of one `prepare` of every input into a fresh output folder."""
    output = work / f"out-{workers}-{run}"
    values = {"kind": "dicom", "input_dir": inputs.as_posix(), "output_dir": output.as_posix(), "workers": workers,
              "sr_scales": [], "normal_patches_per_image": 0, "split_ratios": [1.0, 0.0, 0.0]}
    config_path = work / f"prepare-{workers}-{run}.config"
    config_path.write_text("[prepare]\n" + "".join(f"{k} = {toml_literal(v)}\n" for k, v in values.items()))
    config = load_config(config_path)
    start, cpu_start = time.perf_counter(), cpu_seconds()
    code = run_prepare(config)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
    close_log_files()
    if code != 0:
        raise RuntimeError(f"prepare failed with {workers} worker(s); see {output / 'prepare.log'}")
    return seconds, cpu


def output_mb(work: Path, workers: int) -> float:
    return sum(p.stat().st_size for p in (work / f"out-{workers}-0").rglob("*.png")) / 1e6


def measure(files: list[dict[str, Any]]) -> dict[str, Any]:
    load_start, probe_start = list(os.getloadavg()), parallel_probe()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as temp:
        work = Path(temp)
        inputs = work / "in"
        inputs.mkdir()
        for index, item in enumerate(files):  # flat folder; prefixes keep equal file names apart
            (inputs / f"{index}_{item['path'].name}").symlink_to(item["path"])
        times: dict[int, list[tuple[float, float]]] = {w: [] for w in WORKERS}
        for run in range(REPEATS):
            for workers in WORKERS:
                times[workers].append(time_prepare(work, inputs, workers, run))
        total_mb = sum(f["mb"] for f in files)
        total_mpixels = sum(f["pixels"] for f in files) / 1e6
        for workers in WORKERS:
            best, cpu = min(times[workers])
            rows.append({"workers": workers, "images": len(files), "input_mb": total_mb, "megapixels": total_mpixels,
                         "output_png_mb": output_mb(work, workers), "seconds": best, "cpu_seconds": cpu,
                         "all_seconds": [t for t, _ in times[workers]],
                         "images_per_s": len(files) / best, "mb_per_s": total_mb / best, "megapixels_per_s": total_mpixels / best})
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": sys.version.split()[0],
               "opencv": cv2.__version__, "numpy": np.__version__, "pydicom": pydicom.__version__,
               "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
               "parallel_probe_start": probe_start, "parallel_probe_end": parallel_probe()}
    return {"machine": machine, "command": COMMAND, "repeats": REPEATS, "rows": rows,
            "files": [{k: v for k, v in f.items() if k != "path"} for f in files]}


def markdown(result: dict[str, Any], skipped: list[str]) -> str:
    m = result["machine"]
    one, two = (next(r for r in result["rows"] if r["workers"] == w) for w in WORKERS)
    lines = [
        "# `mammogan prepare` speed: DICOM → PNG",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']}, pydicom {m['pydicom']}, OpenCV {m['opencv']}, "
        f"numpy {m['numpy']}. Load average {m['load_average_start'][0]:.1f} → {m['load_average_end'][0]:.1f} during the runs; "
        f"2 processes ran pure-Python work {m['parallel_probe_start']:.2f}× / {m['parallel_probe_end']:.2f}× as fast as 1 "
        "(start / end; 2.0 = two free cores).",
        "",
        f"Inputs: the {one['images']} decodable sample DICOMs of ../shared/data/dicom ({one['input_mb']:.1f} MB of files, "
        f"{one['megapixels']:.0f} megapixels){'; not decodable, left out: ' + ', '.join(skipped) if skipped else ''}. "
        "Each run is a whole `prepare` (kind = \"dicom\", full resolution, 16-bit PNG image + 4 masks per file, "
        f"no LR images or patches); best of {result['repeats']} runs, 1 and 2 workers alternating.",
        "",
        "| workers | seconds | images/s | MB/s (DICOM in) | megapixels/s | CPU seconds | PNG written (MB) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['workers']} | {r['seconds']:.1f} | {r['images_per_s']:.3f} | {r['mb_per_s']:.2f} | "
                     f"{r['megapixels_per_s']:.1f} | {r['cpu_seconds']:.1f} | {r['output_png_mb']:.1f} |")
    lines += ["", f"Speed-up of 2 workers over 1: {one['seconds'] / two['seconds']:.2f}× (wall clock). CPU seconds are the "
              "work done by the run and its worker processes whatever else the machine runs; equal CPU seconds mean "
              "the pool adds no work, so on two free cores the speed-up is bounded only by how evenly the images "
              f"split between the workers (the largest image is {max(f['pixels'] for f in result['files']) / 1e6:.0f} of the "
              f"{one['megapixels']:.0f} megapixels).", "",
              "| file | transfer syntax | size (MB) | pixels (rows × cols) | decode + LUTs alone (s) |",
              "| --- | --- | ---: | --- | ---: |"]
    for f in result["files"]:
        lines.append(f"| {f['file']} | {f['transfer_syntax']} | {f['mb']:.2f} | {f['shape'][0]} × {f['shape'][1]} | {f['decode_s']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    if not DICOM_DATA.is_dir():
        print(f"bench_prepare: skipped, shared DICOM samples not found at {DICOM_DATA}")
        return 0
    files, skipped = decodable(DICOM_DATA)
    if not files:
        print(f"bench_prepare: skipped, no decodable DICOM in {DICOM_DATA}")
        return 0
    result = measure(files)
    result["not_decodable"] = skipped
    atomic_write_text(RESULTS / "prepare.json", json.dumps(result, indent=1) + "\n")
    text = markdown(result, skipped)
    atomic_write_text(RESULTS / "prepare.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

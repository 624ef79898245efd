"""Full-field ×2 SR inference of 16-bit mammograms: wall time and peak memory of `mammogan infer` per file.

Each file is super-resolved by its own `mammogan infer` process (the command a user runs), on the trained
projects/SRGAN/Digital-x2 generator when it exists (else an untrained network of the same shape: the
time does not depend on the weights). Inputs: a 4915×5355 JPEG 2000 DICOM (RSNA, VOI LUT applied as
`prepare` does) and a 2560×3328 16-bit PNG. Without --png the PNG is made here from the NYU 16-bit
image by a bicubic resize to 2560×3328 (the size of NYU's full-field exports), and said so.

Run:  .venv/bin/python benchmarks/bench_sr_fullfield.py
Writes benchmarks/results/sr_fullfield.json and sr_fullfield.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mammogan.config.loader import load_config  # noqa: E402
from mammogan.registry import GENERATORS  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
PROJECT = REPO / "projects" / "SRGAN" / "Digital-x2"


def make_png(source: Path, target: Path, size: tuple[int, int]) -> None:
    image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    resized = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(target), np.clip(np.round(resized), 0, 65535).astype(np.uint16))


def run_folder(config: Path, folder: Path, output: Path, models: Path) -> None:
    """A config like the project's, reading `folder` and the generator in `models` (a run folder)."""
    text = (PROJECT / "train_eval_infer.config").read_text(encoding="utf-8")
    text = text.split("[dataset]")[0] + f"""
[train]
output_dir = "{models.as_posix()}"

[infer]
input_dir = "{folder.as_posix()}"
output_dir = "{output.as_posix()}"
tile_size = 256
tile_overlap = 24
"""
    config.write_text(text, encoding="utf-8")


def untrained_run(folder: Path) -> Path:
    """A run folder holding an untrained generator of the project's shape."""
    config = load_config(PROJECT / "train_eval_infer.config")
    model = GENERATORS.get(config.model.generator)(**config.arguments_for("generator", config.model.generator))
    (folder / "models" / "best").mkdir(parents=True)
    model.save(folder / "models" / "best" / "generator.keras")
    return folder


def measure(config: Path) -> dict[str, float]:
    """Wall time and peak resident memory of one `mammogan infer` process (its own rusage, not this script's)."""
    script = ("import resource, runpy, sys; sys.argv = ['mammogan', 'infer', sys.argv[1]]\n"
              "try:\n    runpy.run_module('mammogan', run_name='__main__')\n"
              "finally:\n    print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"mammogan infer failed:\n{result.stderr[-3000:]}")
    peak_kb = int(result.stderr.rsplit("PEAK_KB", 1)[1].split()[0])
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024, 0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dicom", type=Path, default=SHARED / "dicom" / "rsna" / "10006" / "1874946579.dcm")
    parser.add_argument("--png", type=Path, default=None, help="a 16-bit full-field PNG (default: made from the NYU image)")
    args = parser.parse_args()
    trained = PROJECT / "output" / "models" / "best" / "generator.keras"
    with tempfile.TemporaryDirectory() as temp:
        temp = Path(temp)
        png_note = "given"
        if args.png is None:
            args.png = temp / "nyu_0_L-CC_2560x3328.png"
            make_png(SHARED / "nyu" / "GMIC" / "cropped_images_commit_febe243" / "0_L-CC.png", args.png, (2560, 3328))
            png_note = "NYU 0_L-CC (1920×2944, 16-bit) resized bicubically to 2560×3328"
        models = PROJECT / "output" if trained.is_file() else untrained_run(temp / "untrained")
        rows = []
        for name, source in (("png", args.png), ("dicom", args.dicom)):
            folder = temp / f"in_{name}"
            folder.mkdir()
            (folder / source.name).symlink_to(source.resolve())
            config = temp / f"{name}.config"
            run_folder(config, folder, temp / f"out_{name}", models)
            measured = measure(config)
            written = next((temp / f"out_{name}").glob("*.png"))
            out = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
            megapixels = out.shape[0] * out.shape[1] / 1e6
            rows.append({"input": name, "file": source.name, "output_shape": list(out.shape), "output_dtype": str(out.dtype),
                         "output_megapixels": round(megapixels, 1), **measured,
                         "output_mp_per_s": round(megapixels / measured["seconds"], 2)})
            print(rows[-1], flush=True)
    summary = {"command": "benchmarks/bench_sr_fullfield.py", "model": str(trained.relative_to(REPO)) if trained.is_file() else "untrained srresnet 8×32",
               "png": png_note, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "load_average": os.getloadavg(), "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sr_fullfield.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    lines = ["# Full-field SR inference (×2, 16-bit)", "", "Command: `.venv/bin/python benchmarks/bench_sr_fullfield.py`. "
             f"Model: {summary['model']}; tile 256 LR px, overlap 24. PNG: {png_note}. Load average at the end: "
             f"{', '.join(f'{v:.1f}' for v in summary['load_average'])}. Each row is one `mammogan infer` process "
             "(start-up, TensorFlow import, reading, tiled inference, writing the 16-bit PNG).", "",
             "| input | output (rows × cols) | output MP | seconds | output MP/s | peak RSS (MB) |", "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['input']} `{r['file']}` | {r['output_shape'][0]} × {r['output_shape'][1]} ({r['output_dtype']}) | "
              f"{r['output_megapixels']} | {r['seconds']} | {r['output_mp_per_s']} | {r['peak_rss_mb']:.0f} |" for r in rows]
    (RESULTS / "sr_fullfield.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

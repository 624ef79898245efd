"""Markdown table of SR evaluations side by side (docs/results.md): bicubic, then each run's model, with the gain.

Reads the `evaluation.csv` that `mammogan evaluate` wrote for each run; every run must have been
evaluated on the same test split (the bicubic column is taken from the first and checked against the others).

Run:  .venv/bin/python scripts/sr_results_table.py "plain baseline=benchmarks/output/sr-baseline-x2/evaluation" \\
          "MIAS-full-x2=projects/SRGAN/MIAS-full-x2/output/evaluation"
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROWS = (  # (metric column prefix + name, label, decimals)
    ("psnr", "PSNR (dB), whole image", 2), ("ssim", "SSIM, whole image", 4), ("haarpsi", "HaarPSI, whole image", 4),
    ("tissue_psnr", "PSNR (dB), breast tissue", 2), ("tissue_ssim", "SSIM, breast tissue", 4),
    ("tissue_haarpsi", "HaarPSI, breast tissue", 4),
    ("calcification_psnr", "PSNR (dB), calcification ROIs", 2), ("calcification_ssim", "SSIM, calcification ROIs", 4),
    ("calcification_haarpsi", "HaarPSI, calcification ROIs", 4),
    ("spots_recall", "spot recall (HR spots found)", 3), ("spots_precision", "spot precision", 3),
    ("spots_contrast_ratio", "spot peak contrast / HR's", 3),
)


def read(folder: Path) -> dict[str, dict[str, str]]:
    path = folder / "evaluation.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: not found (run that experiment's 2.evaluate first)")
    with path.open(newline="") as handle:
        return {row["metric"]: row for row in csv.DictReader(handle)}


def number(text: str, decimals: int, sign: str = "") -> str:
    """A CSV value rounded, or "—" where it is undefined (e.g. the contrast of spots bicubic never found)."""
    value = float(text) if text not in ("", "nan") else float("nan")
    return "—" if value != value else f"{value:{sign}.{decimals}f}"


def table(runs: list[tuple[str, dict[str, dict[str, str]]]]) -> str:
    first = runs[0][1]
    header = ["measure (mean over test images)", "bicubic", *(name for name, _ in runs)]
    lines = ["| " + " | ".join(header) + " |", "| --- | " + " | ".join("---:" for _ in header[1:]) + " |"]
    for metric, label, decimals in ROWS:
        if metric not in first:
            continue
        for name, rows in runs[1:]:
            if number(rows[metric]["bicubic_mean"], 6) != number(first[metric]["bicubic_mean"], 6):
                raise SystemExit(f"{name}: its bicubic {metric} differs from {runs[0][0]}'s: not the same test split")
        row = first[metric]
        what = f" ({row['images']} images" + (f", {row['rois']} {row['counted']})" if row["counted"] else ")")
        cells = [number(first[metric]["bicubic_mean"], decimals)]
        for _, rows in runs:
            cells.append(f"{number(rows[metric]['model_mean'], decimals)} ({number(rows[metric]['gain_mean'], decimals, '+')})")
        lines.append(f"| {label}{what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="NAME=EVALUATION_FOLDER, in column order")
    args = parser.parse_args()
    runs = []
    for item in args.runs:
        name, _, folder = item.partition("=")
        if not folder:
            raise SystemExit(f"{item!r}: expected NAME=EVALUATION_FOLDER")
        runs.append((name, read(Path(folder))))
    sys.stdout.write(table(runs) + "\n")


if __name__ == "__main__":
    main()

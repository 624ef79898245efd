"""The demo's closing summary: what was trained and the numbers it reached, read from the runs' own CSVs.

    python scripts/demo_summary.py   (run_demo.sh / run_demo.bat call it last)

It reports whatever the evaluations measured — including a model that does not beat its baselines.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SR = REPO / "projects" / "SRGAN" / "MIAS-x2" / "output"
GAN = REPO / "projects" / "GAN" / "DCGAN-MIAS" / "output"


def rows(path: Path, key: str) -> dict[str, dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {row[key]: row for row in csv.DictReader(handle)}


def last_step(run: Path) -> str:
    with (run / "train_metrics.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))[-1]["step"]


def main() -> int:
    sr, gan = rows(SR / "evaluation" / "evaluation.csv", "metric"), rows(GAN / "evaluation" / "evaluation.csv", "arm")

    def gain(metric: str) -> str:
        row = sr.get(metric)
        return f"{float(row['gain_mean']):+.2f} dB ({row['images']} images)" if row else "not measured"

    kid = {arm: float(row["kid_mean"]) for arm, row in gan.items()}
    ranked = " < ".join(f"{arm} {value:.4f}" for arm, value in sorted(kid.items(), key=lambda item: item[1]))
    baselines = [arm for arm in ("step0_generator", "gaussian_noise") if arm in kid]
    beaten = [arm for arm in baselines if kid["generator"] < kid[arm]]
    lost = [arm for arm in baselines if arm not in beaten]
    print(f"Trained: SR x2 (srgan family, pixel loss only, {last_step(SR)} steps) and DCGAN ({last_step(GAN)} steps) on the bundled mini-MIAS sample.")
    print(f"SR on held-out films, PSNR over bicubic: whole image {gain('psnr')}, breast tissue {gain('tissue_psnr')}.")
    print(f"DCGAN KID ({next(iter(gan.values()))['extractor']} features, lower is better): {ranked}.")
    texture = {arm: row.get("texture_c2st", "") for arm, row in gan.items()}
    print(f"The generator beats {', '.join(beaten) or 'no baseline'}" + (f" and does NOT beat {', '.join(lost)}" if lost else "")
          + " on this extractor" + (f"; texture C2ST (0.5 = indistinguishable from real test patches) generator "
                                    f"{float(texture['generator']):.2f}, real_train {float(texture['real_train']):.2f}."
                                    if texture.get("generator") and texture.get("real_train") else "."))
    print(f"Reports: {SR / 'report.html'}  {GAN / 'report.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

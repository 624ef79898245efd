"""SinGAN training time per patch and the quality it reaches at 25 / 50 / 100 % of the steps per scale.

One calcification patch of a prepared dataset (default dataset/MIAS, from dataset/MIAS-shared.config)
is trained with the recipe of projects/SinGAN/MIAS-calcification at 64² (the prepared patch) and at
128² (a 128² crop of the prepared film around the same lesion box), each with steps_per_scale × 0.25,
0.5 and 1 (the learning-rate drop kept at the same fraction). Reported per run: minutes, scales,
reconstruction RMSE of the finest scale (in [0, 1] grey levels) and the mean SIFID (random_cnn features)
of 16 random samples against the source, with their pixel diversity.

Run:  .venv/bin/python benchmarks/bench_singan.py [--dataset dataset/MIAS] [--sizes 64 128]
Writes benchmarks/results/singan.json and singan.md; sample sheets in benchmarks/output/singan/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mammogan.config.loader import load_config  # noqa: E402
from mammogan.data.images import read_image  # noqa: E402
from mammogan.families.singan import (ScaleSettings, SinGAN, SourcePatch, chosen_patches, patch_seed,  # noqa: E402
                                      train_patch)
from mammogan.metrics.features import build_random_cnn  # noqa: E402
from mammogan.metrics.single_image import pixel_diversity, sifid  # noqa: E402
from mammogan.models.singan import pyramid_for  # noqa: E402
from mammogan.visual.tiles import gan_tile  # noqa: E402

PROJECT = REPO / "projects" / "SinGAN" / "MIAS-calcification" / "train_eval_infer.config"
RESULTS = REPO / "benchmarks" / "results"
OUTPUT = REPO / "benchmarks" / "output" / "singan"
FRACTIONS = (0.25, 0.5, 1.0)


def source_at(patch: SourcePatch, dataset: Path, size: int) -> SourcePatch:
    """The patch itself at its prepared size, or a size² crop of its film centred on the same lesion box."""
    if size == patch.image.shape[0]:
        return patch
    x0, y0, x1, y1 = map(int, patch.row["box"].split())
    film = read_image(dataset / patch.row["split"] / "images" / f"{patch.row['source_image']}.png")
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    top = int(np.clip(cy - size // 2, 0, film.shape[0] - size))
    left = int(np.clip(cx - size // 2, 0, film.shape[1] - size))
    crop = film[top : top + size, left : left + size].astype(np.float32) / np.iinfo(film.dtype).max
    return dataclasses.replace(patch, name=f"{Path(patch.name).stem}_{size}.png", image=crop, mask=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=REPO / "dataset" / "MIAS")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 500], help="100 %% steps per scale, per size")
    parser.add_argument("--markdown-only", action="store_true", help="re-make singan.md from singan.json, train nothing")
    args = parser.parse_args()
    if args.markdown_only:
        print(write_markdown(json.loads((RESULTS / "singan.json").read_text(encoding="utf-8"))))
        return
    config = load_config(PROJECT)
    patch = chosen_patches(config, args.dataset / "patches" / "train", "train_dir")[0]
    extractor = build_random_cnn(seed=0)
    recipe = ScaleSettings.from_config(config)
    runs = []
    for size, full in zip(args.sizes, args.steps):
        source = source_at(patch, args.dataset, size)
        pyramid = pyramid_for(size, size, config.singan.scale_factor, config.singan.min_size, config.singan.max_size)
        for fraction in FRACTIONS:
            steps = max(1, round(full * fraction))
            settings = dataclasses.replace(recipe, steps=steps, lr_decay_step=round(recipe.lr_decay_step / recipe.steps * steps),
                                           tile_every=steps)
            folder = OUTPUT / f"{size}_{steps}"
            for old in folder.glob("*") if folder.is_dir() else []:
                if old.is_file():
                    old.unlink()
            began = time.perf_counter()
            state = train_patch(source, folder, pyramid, settings, patch_seed(config.train.seed, source.name))
            minutes = (time.perf_counter() - began) / 60
            model, _ = SinGAN.load(folder)
            samples = np.stack(model.sample(16, seed=1))
            gan_tile(folder / "samples.png", f"{len(samples)} samples", samples, source.image[None], {})
            run = {"size": size, "steps_per_scale": steps, "fraction": fraction, "scales": pyramid.scales,
                   "shapes": [list(s) for s in pyramid.shapes], "minutes": round(minutes, 2),
                   "scale_seconds": state["seconds"], "reconstruction_rmse": state["reconstruction_rmse"][-1],
                   "sifid": float(np.mean(sifid(extractor, samples, source.image))),
                   "diversity_pixel_std": pixel_diversity(samples, source.image), "patch": patch.name}
            runs.append(run)
            print(json.dumps(run), flush=True)
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "recipe": str(PROJECT.relative_to(REPO)),
              "command": "benchmarks/bench_singan.py " + " ".join(sys.argv[1:]), "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "singan.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(write_markdown(result))


def write_markdown(result: dict) -> str:
    """benchmarks/results/singan.md from the results (also re-made from singan.json with --markdown-only)."""
    lines = [f"SinGAN per patch: {result['command']} on {result['machine']} (recipe {result['recipe']}, XLA as the recipe "
             f"sets; patch {result['runs'][0]['patch']}; 16 samples per run).", "",
             "| patch | scales | steps per scale | minutes | reconstruction RMSE | SIFID (random_cnn) | pixel diversity |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['size']}² | {r['scales']} | {r['steps_per_scale']} ({r['fraction']:.0%}) | {r['minutes']:.1f} | "
              f"{r['reconstruction_rmse']:.4f} | {r['sifid']:.4f} | {r['diversity_pixel_std']:.3f} |" for r in result["runs"]]
    text = "\n".join(lines) + "\n"
    (RESULTS / "singan.md").write_text(text, encoding="utf-8")
    return text


if __name__ == "__main__":
    main()

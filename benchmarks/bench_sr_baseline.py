"""The plain SR baseline the recipes must beat (issue 14), trained here without the library's trainer.

8 residual blocks × 32 filters (conv-ReLU-conv), sub-pixel ×2 steps, a bicubic global skip; L1 loss,
Adam 2e-4, 16 HR crops of 96² per step (crops whose mean is below 0.08 are skipped, so background does
not dominate), LR = the prepared antialiased-bicubic `lr_x{scale}` images (read by the library). Only the crops
and the loop live here; the saved generator is then scored by `mammogan evaluate` on the same held-out
split as the recipes, so both sides of the comparison are measured by the same code.

Run:  .venv/bin/python benchmarks/bench_sr_baseline.py --dataset dataset/MIAS --scale 2
Writes benchmarks/output/sr-baseline-x2/ (the run folder with its evaluation) and
benchmarks/results/sr_baseline_x2.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mammogan.data.sr_dataset import load_split  # noqa: E402
from mammogan.registry import GENERATORS  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


def build_plain_net(scale: int, blocks: int = 8, filters: int = 32) -> keras.Model:
    """The baseline's network: the registered `edsr` shape (conv-ReLU-conv blocks, 3×3, bicubic skip)."""
    return GENERATORS.get("edsr")(scale=scale, filters=filters, blocks=blocks, global_skip="bicubic")


def crops(pairs, scale: int, patch: int, batch: int, min_mean: float, rng: np.random.Generator):
    lr_patch = patch // scale
    while True:
        hr_batch, lr_batch = [], []
        while len(hr_batch) < batch:
            hr, lr = pairs[rng.integers(len(pairs))]
            y = rng.integers(lr.shape[0] - lr_patch + 1)
            x = rng.integers(lr.shape[1] - lr_patch + 1)
            hr_crop = hr[y * scale: (y + lr_patch) * scale, x * scale: (x + lr_patch) * scale]
            if hr_crop.mean() < min_mean:
                continue
            hr_batch.append(hr_crop)
            lr_batch.append(lr[y: y + lr_patch, x: x + lr_patch])
        yield np.stack(lr_batch)[..., None], np.stack(hr_batch)[..., None]


def train(model: keras.Model, pairs, args) -> float:
    optimizer = keras.optimizers.Adam(args.learning_rate)
    optimizer.build(model.trainable_variables)

    @tf.function
    def step(lr, hr):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(lr, training=True) - hr))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    stream = crops(pairs, args.scale, args.patch, args.batch, args.min_mean, np.random.default_rng(args.seed))
    start = time.perf_counter()
    for index in range(1, args.steps + 1):
        loss = step(*next(stream))
        if index % 250 == 0:
            print(f"baseline ×{args.scale}: step {index}/{args.steps}, L1 {float(loss):.4f}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)
    return time.perf_counter() - start


def write_run_config(run: Path, dataset: Path, scale: int, border_crop: int) -> Path:
    """A config whose [train] output_dir is this run, so `mammogan evaluate` scores the baseline as it scores recipes."""
    config = run / "train_eval_infer.config"
    config.write_text(f"""# Written by benchmarks/bench_sr_baseline.py: scores the plain baseline saved in ./models.
[model]
task = "srgan"
generator = "edsr"
scale = {scale}

[dataset]
train_dir = "{(dataset / 'train').as_posix()}"
valid_dir = "{(dataset / 'valid').as_posix()}"
test_dir = "{(dataset / 'test').as_posix()}"
lr_subdir = "lr_x{scale}"

[train]
output_dir = "."

[eval]
output_dir = "./evaluation"
border_crop = {border_crop}
metrics = ["psnr", "ssim", "haarpsi"]
""", encoding="utf-8")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=REPO / "dataset" / "MIAS")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--min-mean", type=float, default=0.08)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--border-crop", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = args.dataset.resolve()
    run = REPO / "benchmarks" / "output" / f"sr-baseline-x{args.scale}"
    (run / "models" / "best").mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    split = load_split(dataset / "train", args.scale, f"lr_x{args.scale}", 0.0)  # [0, 1] floats, HR cut to scale × LR
    pairs = list(zip(split.hr, split.lr))
    model = build_plain_net(args.scale)
    seconds = train(model, pairs, args)
    model.save(run / "models" / "best" / "generator.keras")
    config = write_run_config(run, dataset, args.scale, args.border_crop)
    subprocess.run([sys.executable, "-m", "mammogan", "evaluate", str(config)], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {"command": f"benchmarks/bench_sr_baseline.py --dataset {args.dataset} --scale {args.scale}",
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__},
               "train_images": len(pairs), "steps": args.steps, "train_seconds": round(seconds, 1),
               "params": model.count_params(), "evaluation_dir": str((run / "evaluation").relative_to(REPO))}
    (RESULTS / f"sr_baseline_x{args.scale}.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

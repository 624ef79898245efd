"""SR speed: train steps/s (with and without XLA), tf.data images/s, tiled inference on a full-field image.

Run:  .venv/bin/python benchmarks/bench_sr.py [--quick]
Writes benchmarks/results/sr.json and sr.md. Numbers depend on what else the machine is doing:
the load average at start and end is recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mammogan.data.images import write_png  # noqa: E402
from mammogan.data.samplers import CropSampler, ShardSampler  # noqa: E402
from mammogan.data.sr_dataset import SRSplit  # noqa: E402
from mammogan.data.sr_tfrecord import ensure_shards  # noqa: E402
from mammogan.models.sampling import make_runner  # noqa: E402
from mammogan.models.tiling import tiled_super_resolve  # noqa: E402
from mammogan.registry import GENERATORS  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"


def conv_flops(model: keras.Model, input_hw: tuple[int, int]) -> float:
    """Multiply-adds ×2 of every Conv2D for one input of `input_hw` (the bulk of an SR network's work)."""
    probe = keras.Model(model.inputs, [layer.output for layer in model.layers if isinstance(layer, keras.layers.Conv2D)])
    outputs = probe(np.zeros((1, *input_hw, 1), np.float32))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    total = 0.0
    for layer, output in zip(convs, outputs):
        kh, kw, cin, cout = layer.kernel.shape
        total += 2.0 * kh * kw * cin * cout * output.shape[1] * output.shape[2]
    return total


def matmul_gflops(size: int = 2048, repeats: int = 5) -> float:
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.linalg.matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        tf.linalg.matmul(a, b).numpy()
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def train_steps_per_s(model: keras.Model, batch: int, patch: int, scale: int, steps: int, jit: bool) -> float:
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)
    lr = tf.random.uniform((batch, patch // scale, patch // scale, 1))
    hr = tf.random.uniform((batch, patch, patch, 1))

    @tf.function(jit_compile=jit)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(lr, training=True) - hr))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    float(step())
    return (steps + 1) / (time.perf_counter() - start)


def pipeline_images_per_s(batch: int, patch: int, scale: int, batches: int) -> float:
    rng = np.random.default_rng(0)
    hr = [rng.random((1024, 800)).astype(np.float32) for _ in range(8)]
    split = SRSplit([f"i{i}" for i in range(8)], hr, [h[::scale, ::scale] for h in hr], [None] * 8, 1.0, np.dtype(np.uint8), scale)
    return dataset_images_per_s(CropSampler(split, patch, 0.0, True, 0).dataset(batch, 0), batch, batches)


def tfrecord_pipeline_images_per_s(batch: int, patch: int, scale: int, batches: int, side: tuple[int, int] = (3328, 2560),
                                   images: int = 4, crops_per_image: int = 8) -> float:
    """Crops/s streamed from TFRecord shards of 16-bit full-field-sized images (PNG decode + crop per image)."""
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp) / "train"
        for i in range(images):
            hr = rng.integers(0, 4096, size=side, dtype=np.uint16)
            write_png(folder / "images" / f"i{i}.png", hr)
            write_png(folder / "lr" / f"i{i}.png", hr[::scale, ::scale])
        shards = ensure_shards(folder, Path(temp) / "shards", scale, "lr", patch)
        sampler = ShardSampler(shards, patch, 0.0, True, 0, crops_per_image, 16, 0.0)
        return dataset_images_per_s(sampler.dataset(batch, 0), batch, batches)


def dataset_images_per_s(dataset: tf.data.Dataset, batch: int, batches: int) -> float:
    iterator = iter(dataset)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer steps (smoke run)")
    args = parser.parse_args()
    steps = 5 if args.quick else 30
    load_start = os.getloadavg()[0]
    results: dict[str, object] = {"machine": f"{os.cpu_count()} CPUs, {platform.platform()}", "tensorflow": tf.__version__}
    matmul = matmul_gflops()
    results["dense_matmul_gflops"] = matmul
    rows = []
    for name, kwargs in (("srresnet-32f-4b (demo)", dict(filters=32, blocks=4)), ("srresnet-64f-16b (SRGAN)", dict(filters=64, blocks=16))):
        for jit in (False, True):
            keras.utils.set_random_seed(0)
            model = GENERATORS.get("srresnet")(scale=2, **kwargs)
            rate = train_steps_per_s(model, batch=16, patch=96, scale=2, steps=steps, jit=jit)
            flops = 3 * conv_flops(model, (48, 48)) * 16  # forward + backward ≈ 3× forward
            rows.append({"model": name, "xla": jit, "batch": 16, "hr_patch": 96, "params": model.count_params(),
                         "steps_per_s": rate, "images_per_s": rate * 16, "achieved_gflops": rate * flops / 1e9})
    results["train"] = rows
    results["pipeline_images_per_s"] = pipeline_images_per_s(16, 96, 2, 20 if args.quick else 100)
    results["tfrecord_pipeline_images_per_s"] = tfrecord_pipeline_images_per_s(16, 96, 2, 10 if args.quick else 40)

    keras.utils.set_random_seed(0)
    model = GENERATORS.get("srresnet")(scale=2, filters=32, blocks=4)
    runner = make_runner(model)
    lr = np.random.default_rng(0).random((3328 // 2, 2560 // 2)).astype(np.float32)
    tiled_super_resolve(runner, lr[:256, :256], 2, 128, 16, 4)  # trace
    start = time.perf_counter()
    tiled_super_resolve(runner, lr, 2, 256, 16, 4)
    seconds = time.perf_counter() - start
    flops = conv_flops(model, lr.shape)
    results["tiled_inference"] = {"model": "srresnet-32f-4b", "output": "3328x2560", "tile": 256, "overlap": 16, "batch": 4,
                                  "seconds": seconds, "output_megapixels_per_s": 3328 * 2560 / 1e6 / seconds,
                                  "achieved_gflops": flops / seconds / 1e9, "fraction_of_matmul": flops / seconds / 1e9 / matmul}
    results["load_average"] = [load_start, os.getloadavg()[0]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "sr.json").write_text(json.dumps(results, indent=1))
    lines = ["# SR speed", "", f"Command: `.venv/bin/python benchmarks/bench_sr.py`. Machine: {results['machine']}, TF {tf.__version__}; "
             f"load average {load_start:.1f} → {os.getloadavg()[0]:.1f}. Dense float32 matmul: {matmul:.1f} GFLOP/s.", "",
             "| model | XLA | batch × HR patch | params | steps/s | images/s | GFLOP/s (≈3× forward convs) |", "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {'on' if r['xla'] else 'off'} | 16 × 96² | {r['params']:,} | {r['steps_per_s']:.2f} | {r['images_per_s']:.1f} | {r['achieved_gflops']:.1f} |")
    tiled = results["tiled_inference"]
    lines += ["", f"tf.data crop pipeline alone: {results['pipeline_images_per_s']:.0f} images/s (16 × 96² crops, flips).",
              f"TFRecord streaming (storage = \"tfrecord\"): {results['tfrecord_pipeline_images_per_s']:.0f} images/s "
              "(same crops, from 16-bit 3328×2560 PNGs in shards, 8 crops per decoded image).", "",
              f"Tiled ×2 inference to {tiled['output']} ({tiled['model']}, LR tile {tiled['tile']}, overlap {tiled['overlap']}): "
              f"{tiled['seconds']:.1f} s, {tiled['output_megapixels_per_s']:.2f} output MP/s, {tiled['achieved_gflops']:.1f} GFLOP/s "
              f"= {100 * tiled['fraction_of_matmul']:.0f}% of the dense-matmul rate."]
    (RESULTS / "sr.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

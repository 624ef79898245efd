"""GAN speed: D step and G step time per family, with and without XLA and mixed precision.

    .venv/bin/python benchmarks/bench_gan.py [--resolution 64 128] [--families dcgan ...] [--steps 5] [--render]

Every family is an experiment config under projects/*/ whose [model] task is registered and whose task
splits its train step into `discriminator_step` and `generator_step` (PatchGAN and subclasses: DCGAN,
WGAN-GP, SNGAN, ACGAN, pix2pix = mask_to_image; a family whose task is missing is noted). The config is
used as is (models, optimizer, loss, stabilisers, EMA) except batch size, image size and the two switches.
Models, optimizers and the compiled steps come from the Trainer and the Task, as in training (`Trainer.compile_step`:
strategy.run, loss reduction, `after_step` after G, jit_compile). Data is synthetic: one batch drawn once
from a throwaway split of random-noise PNGs and fed to every step, so I/O and tf.data are excluded.
Times are medians over timed calls made in rounds over a family's four combinations (other jobs' load then
hits them alike), after untimed rounds; the first call of each step, which traces and compiles, is reported apart.
Results: benchmarks/results/gan.json and gan.md; `--render` rewrites gan.md from gan.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mammogan.config.loader import validate  # noqa: E402
from mammogan.data.images import write_png  # noqa: E402
from mammogan.errors import UserError  # noqa: E402
from mammogan.registry import FAMILIES  # noqa: E402
from mammogan.families.patch_gan import PatchGAN  # noqa: E402
from mammogan.train.trainer import Trainer  # noqa: E402
from mammogan.core.io import atomic_write_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
EXPECTED_FAMILIES = ("dcgan", "conditional", "mask_to_image")  # issue #6's families; a missing one is noted
SWITCHES = {"off": (False,), "on": (True,), "both": (False, True)}
PATCHES_PER_SPLIT = 8


def family_configs() -> list[tuple[str, Path, str]]:
    """(family, config path, task) of every experiment config under projects/, sorted by path; the family is
    the folder's prefix (DCGAN-MIAS and DCGAN-MIAS-full → dcgan)."""
    found = []
    for path in sorted(REPO.glob("projects/*/*/train_eval_infer.config")):
        with path.open("rb") as handle:
            task = tomllib.load(handle).get("model", {}).get("task", "srgan")
        found.append((path.parent.name.split("-")[0].lower(), path, task))
    return found


def split_steps(task_class: type) -> bool:
    """True when the task's D and G updates are at least as specific as its fused train step (they are what it runs)."""
    mro = task_class.__mro__

    def owner(name: str) -> int:
        return next(index for index, cls in enumerate(mro) if name in vars(cls))

    return owner("discriminator_step") <= owner("train_step") and owner("generator_step") <= owner("train_step")


def write_random_split(root: Path, size: int, classes: list[str], column: str) -> None:
    """train/ and valid/ with images/ and masks/ of random-noise PNGs, and metadata.csv (patch, class) beside them."""
    rng = np.random.default_rng(size)
    rows = []
    for split in ("train", "valid"):
        for index in range(PATCHES_PER_SPLIT):
            name = f"{split}{index:02d}.png"
            write_png(root / split / "images" / name, rng.integers(0, 256, (size, size), dtype=np.uint8))
            write_png(root / split / "masks" / name, (rng.random((size, size)) > 0.5).astype(np.uint8) * 255)
            rows.append({"patch": name, column: classes[index % len(classes)]})
    with (root / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["patch", column])
        writer.writeheader()
        writer.writerows(rows)


def make_trainer(path: Path, work: Path, size: int, batch: int, xla: bool, mixed: bool) -> Trainer:
    """The family's config with the benchmark's batch, size and switches, on a random split written into `work`."""
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    dataset = raw.setdefault("dataset", {})
    data = work / "data"
    write_random_split(data, size, raw["model"].get("classes") or ["none"], dataset.get("class_column", "lesion_class"))
    dataset.update(train_dir=str(data / "train"), valid_dir=str(data / "valid"), test_dir=str(data / "valid"))
    dataset.pop("synthetic_dirs", None)
    raw["model"]["image_size"] = size
    raw["train"].update(output_dir=str(work / "output"), batch_size=batch, jit_compile=xla, mixed_precision=mixed)
    return Trainer(validate(raw, path))


def call_seconds(step: Callable, batch: Any) -> float:
    """Wall time of one call, waiting for its losses."""
    start = time.perf_counter()
    for value in step(batch, tf.constant(0, tf.int64)).values():
        value.numpy()
    return time.perf_counter() - start


def prepare(trainer: Trainer, batch: int) -> tuple[dict[str, Any], dict[str, Callable], Any]:
    """Build the task's models as `Trainer.fit` does, compile its D and G steps and make their first calls.

    Returns the row so far (first-call times included), the two steps and the one batch they are fed.
    The first call traces (and compiles, under XLA) with this combination's mixed-precision policy in force.
    """
    task = trainer.task
    keras.utils.set_random_seed(trainer.config.train.seed)
    with trainer.strategy.scope():
        task.build()
    full = next(iter(task.train_dataset(0)))  # n_critic × batch for WGAN-GP: keep one D/G batch
    data = tf.nest.map_structure(lambda t: t[:batch], full)
    steps = {"d": trainer.compile_step(lambda b, s: {"d": task.discriminator_step(task.real_batch(b), s)}, None),
             "g": trainer.compile_step(lambda b, s: task.generator_step(task.real_batch(b), s), task.phases[-1][0])}
    row: dict[str, Any] = {"n_critic": task.critic_steps, "g_params": task.generator.count_params(),
                           "d_params": task.discriminator.count_params()}
    for name, step in steps.items():
        row[f"{name}_first_call_s"] = call_seconds(step, data)
    return row, steps, data


def time_interleaved(prepared: list[tuple[dict[str, Any], dict[str, Callable], Any]], warmup: int, steps: int,
                     batch: int) -> None:
    """Calls in rounds over every combination, so load from other jobs hits all of them alike: `warmup` untimed
    rounds (the second call of a step is still slow), then `steps` timed ones; fills the rows."""
    times: dict[tuple[int, str], list[float]] = {}
    for round_ in range(warmup + steps):
        for index, (_, functions, data) in enumerate(prepared):
            for name, step in functions.items():
                seconds = call_seconds(step, data)
                if round_ >= warmup:
                    times.setdefault((index, name), []).append(1000 * seconds)
    for index, (row, functions, _) in enumerate(prepared):
        for name in functions:
            median = statistics.median(times[index, name])
            row.update({f"{name}_ms": median, f"{name}_times_ms": times[index, name], f"{name}_images_per_s": 1000 * batch / median})
        row["train_step_ms"] = row["n_critic"] * row["d_ms"] + row["g_ms"]
        row["train_images_per_s"] = 1000 * batch / row["train_step_ms"]


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    configs = family_configs()
    registered = set(FAMILIES.names())
    skipped += [{"family": task, "reason": f"task {task!r} is not registered in this checkout"}
                for task in EXPECTED_FAMILIES if task not in registered]
    skipped += [{"family": task, "reason": f"task {task!r} is registered but no projects/*/*/train_eval_infer.config uses it"}
                for task in EXPECTED_FAMILIES if task in registered and task not in {t for _, _, t in configs}]
    chosen: list[tuple[str, Path, str]] = []
    for family, path, task in configs:
        if task not in registered or (args.families and family not in args.families) or family in {c[0] for c in chosen}:
            continue  # a family's first config is the demo one (XXX-MIAS-full differs in data and steps, not models)
        task_class = FAMILIES.get(task)
        if not (isinstance(task_class, type) and issubclass(task_class, PatchGAN)):
            continue  # not a synthetic-image GAN (SR has benchmarks/bench_sr.py)
        if not split_steps(task_class):
            skipped.append({"family": family, "reason": f"{task_class.__name__} overrides only the fused train_step "
                            "(no separate discriminator_step / generator_step to time)"})
            continue
        chosen.append((family, path, task))
    with tempfile.TemporaryDirectory(prefix="bench_gan_") as temp:
        for size in args.resolution:
            for family, path, task in chosen:
                keras.backend.clear_session()
                prepared = []
                for mixed in SWITCHES[args.mixed_precision]:
                    for xla in SWITCHES[args.xla]:
                        rows.append({"family": family, "config": path.relative_to(REPO).as_posix(), "task": task,
                                     "resolution": size, "batch": args.batch, "xla": xla, "mixed_precision": mixed})
                        try:
                            trainer = make_trainer(path, Path(temp) / f"{family}-{size}", size, args.batch, xla, mixed)
                            row, steps, data = prepare(trainer, args.batch)
                        except (UserError, tf.errors.OpError, ValueError, TypeError) as error:
                            rows[-1]["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
                            continue
                        rows[-1].update(row)
                        prepared.append((rows[-1], steps, data))
                time_interleaved(prepared, args.warmup, args.steps, args.batch)
                for row in rows[-len(SWITCHES[args.mixed_precision]) * len(SWITCHES[args.xla]):]:
                    print(row_line(row), flush=True)
    keras.mixed_precision.set_global_policy("float32")
    return {"command": command, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                            "python": sys.version.split()[0], "tensorflow": tf.__version__,
                                            "keras": keras.__version__, "load_average": [load_start, os.getloadavg()[0]]},
            "batch": args.batch, "resolutions": args.resolution, "warmup": args.warmup, "steps": args.steps,
            "seconds": time.perf_counter() - started, "rows": rows, "skipped": skipped}


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def row_line(row: dict[str, Any]) -> str:
    head = f"{row['family']:8s} {row['resolution']:4d}² XLA {_on(row['xla']):3s} mixed {_on(row['mixed_precision']):3s}"
    if "error" in row:
        return f"{head}  failed: {row['error']}"
    return (f"{head}  D {row['d_ms']:8.1f} ms ({row['d_images_per_s']:6.1f} img/s)  G {row['g_ms']:8.1f} ms "
            f"({row['g_images_per_s']:6.1f} img/s)  first calls {row['d_first_call_s']:.1f} / {row['g_first_call_s']:.1f} s")


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = ["# GAN speed: D and G step times", "",
             f"Command: `{results['command']}` ({results['seconds'] / 60:.1f} min, of which first calls "
             f"{sum(r.get('d_first_call_s', 0.0) + r.get('g_first_call_s', 0.0) for r in results['rows']) / 60:.1f} min).",
             f"Machine: {m['cpus']} CPU cores shared with other jobs (load average {m['load_average'][0]:.1f} → "
             f"{m['load_average'][1]:.1f}), {m['platform']}, Python {m['python']}, TF {m['tensorflow']}, Keras {m['keras']}; "
             "times are upper bounds.",
             f"Batch {results['batch']}; each family's experiment config otherwise unchanged (models, optimizer, loss, "
             "DiffAugment/ADA, instance noise, EMA). Synthetic data: one batch drawn once from random-noise PNGs and "
             "reused, so I/O and tf.data are excluded. D step = one D (critic) update, fakes generated inside; G step = one "
             "G update plus the task's after-step work (EMA, ADA). Median of "
             f"{results['steps']} timed calls, made in rounds over a family's combinations so that the load of other jobs "
             f"hits them alike, after the first call and {results['warmup']} untimed round(s); \"first call\" is the trace "
             "(+ XLA compile) time. images/s = batch / step time; a training step is n_critic D steps + 1 G step.",
             "Mixed precision (mixed_float16 with loss scaling) targets GPUs; on this CPU float16 convolutions are "
             "expected to be slow and are reported as measured.", "",
             "| family | res | XLA | mixed | n_critic | D ms | D img/s | G ms | G img/s | train step ms | train img/s | first call D / G s |",
             "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results["rows"]:
        cells = f"| {r['family']} | {r['resolution']}² | {_on(r['xla'])} | {_on(r['mixed_precision'])} |"
        if "error" in r:
            lines.append(f"{cells} – | failed: {r['error'].replace('|', '/')} | | | | | | |")
            continue
        lines.append(f"{cells} {r['n_critic']} | {r['d_ms']:.1f} | {r['d_images_per_s']:.1f} | {r['g_ms']:.1f} | "
                     f"{r['g_images_per_s']:.1f} | {r['train_step_ms']:.1f} | {r['train_images_per_s']:.1f} | "
                     f"{r['d_first_call_s']:.1f} / {r['g_first_call_s']:.1f} |")
    configs = sorted({(r["family"], r["config"], r["task"]) for r in results["rows"]})
    lines += ["", "Configs: " + "; ".join(f"{f} = `{c}` (task {t})" for f, c, t in configs) + "."]
    if results["skipped"]:
        lines += ["", "Not measured: " + "; ".join(f"{s['family']}: {s['reason']}" for s in results["skipped"]) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, nargs="+", default=[64], help="image sizes (powers of two), e.g. 64 128")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5, help="timed rounds: calls per step (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds after each step's first (tracing, compiling) call")
    parser.add_argument("--families", nargs="+", help="only these (dcgan, wgangp, sngan, acgan, ...: project folder prefixes)")
    parser.add_argument("--xla", choices=sorted(SWITCHES), default="both", help="jit_compile off, on or both")
    parser.add_argument("--mixed-precision", choices=sorted(SWITCHES), default="both", help="mixed_float16 off, on or both")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where gan.json and gan.md go")
    parser.add_argument("--render", action="store_true", help="only rewrite gan.md from gan.json")
    args = parser.parse_args(argv)
    if args.warmup < 0 or args.steps < 1:
        parser.error("--warmup must be at least 0 and --steps at least 1")
    if args.render:
        results = json.loads((args.results_dir / "gan.json").read_text())
    else:
        results = run(args, " ".join([".venv/bin/python benchmarks/bench_gan.py", *map(shlex.quote, argv)]))
        atomic_write_text(args.results_dir / "gan.json", json.dumps(results, indent=1))
    atomic_write_text(args.results_dir / "gan.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main(sys.argv[1:])

"""benchmarks/bench_gan.py: one family, one switch combination, two timed steps; the JSON it writes and the report."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

from mammogan.families.conditional import ConditionalGAN
from mammogan.families.patch_gan import PatchGAN

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_gan.py"


def test_dcgan_step_times_json_and_report(tmp_path):
    args = ["--families", "dcgan", "--resolution", "32", "--xla", "off", "--mixed-precision", "off",
            "--steps", "2", "--warmup", "0", "--results-dir", str(tmp_path)]
    subprocess.run([sys.executable, str(SCRIPT), *args], check=True, capture_output=True, cwd=REPO, timeout=120)
    results = json.loads((tmp_path / "gan.json").read_text())
    assert {"command", "machine", "batch", "resolutions", "steps", "warmup", "rows", "skipped"} <= set(results)
    assert results["command"].endswith(" ".join(args[:-1]) + " " + str(tmp_path))
    [row] = results["rows"]
    assert (row["family"], row["task"], row["resolution"], row["batch"], row["xla"], row["mixed_precision"], row["n_critic"]) == \
        ("dcgan", "dcgan", 32, 16, False, False, 1)
    for key in ("d_ms", "g_ms", "d_images_per_s", "g_images_per_s", "train_step_ms", "d_first_call_s", "g_first_call_s"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert len(row["d_times_ms"]) == len(row["g_times_ms"]) == 2
    assert row["d_images_per_s"] == 1000 * 16 / row["d_ms"]
    assert row["train_step_ms"] == row["d_ms"] + row["g_ms"]
    assert all(set(s) == {"family", "reason"} for s in results["skipped"])
    report = (tmp_path / "gan.md").read_text()
    assert f"`{results['command']}`" in report and f"| dcgan | 32² | off | off | 1 | {row['d_ms']:.1f} |" in report


def test_only_tasks_with_separate_d_and_g_steps_are_timed():
    spec = importlib.util.spec_from_file_location("bench_gan", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    class FusedOnly(PatchGAN):
        def train_step(self, phase):  # a fused step the separate D/G methods would not reproduce
            return super().train_step(phase)

    class Split(FusedOnly):
        def discriminator_step(self, real, step):
            return super().discriminator_step(real, step)

        def generator_step(self, real, step):
            return super().generator_step(real, step)

    assert bench.split_steps(PatchGAN) and bench.split_steps(ConditionalGAN) and bench.split_steps(Split)
    assert not bench.split_steps(FusedOnly)

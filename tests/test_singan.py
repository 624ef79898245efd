"""SinGAN: pyramid geometry, losses, training of one patch, the bank's train / evaluate / infer and its resume."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from mammogan.cli import main
from mammogan.config.loader import load_config, validate
from mammogan.errors import ConfigError
from mammogan.data.labelled_patches import CLASSES, synthetic_patches
from mammogan.data.patch_dataset import patch_names
from mammogan.families.singan import (SinGAN, ScaleSettings, chosen_patches, critic_loss, generator_loss, train_patch)
from mammogan.losses import gradient_penalty
from mammogan.models.singan import build_scale_discriminator, build_scale_generator, pyramid_for, scale_filters

REPO = Path(__file__).resolve().parents[1]


def _config(folder: Path, data: Path, **singan: object) -> Path:
    """A tiny SinGAN bank on the bundled sample's mass patches: 32² patches, two scales of 3-layer, 8-filter networks."""
    keys = {"filter_value": "mass", "max_patches": 2, "min_size": 16, "num_scales": 2, "filters": 8, "layers": 3,
            "steps_per_scale": 30, "lr_decay_step": 0, **singan}
    lines = "\n".join(f"{key} = {value!r}".replace("'", '"') for key, value in keys.items())
    path = folder / "train_eval_infer.config"
    path.write_text(f"""[model]
task = "singan"
image_size = 32

[dataset]
train_dir = "{data / 'patches' / 'train'}"
test_dir = "{data / 'patches' / 'test'}"

[train]
output_dir = "./output"
steps_per_epoch = 15
tile_images = 3

[eval]
output_dir = "./output/evaluation"
num_samples = 8
kid_subsets = 5
kid_subset_size = 4
comparison_crops = 0

[infer]
output_dir = "./output/inference"
num_samples = 3

[singan]
{lines}
""")
    return path


def test_the_pyramid_runs_from_min_size_to_the_patch_with_even_steps():
    assert pyramid_for(64, 64).shapes == ((25, 25), (32, 32), (40, 40), (51, 51), (64, 64))
    assert pyramid_for(128, 128).scales == 7 and pyramid_for(128, 128).shapes[0] == (25, 25)
    assert abs(pyramid_for(64, 64).factor - (25 / 64) ** 0.25) < 1e-12
    assert pyramid_for(64, 96).shapes[0] == (25, 38) and pyramid_for(64, 96).shapes[-1] == (64, 96)
    assert pyramid_for(300, 150, max_size=250).shapes[-1] == (250, 125)
    assert pyramid_for(64, 64, num_scales=3).shapes == ((25, 25), (40, 40), (64, 64))
    assert pyramid_for(20, 20).shapes == ((20, 20),)
    assert [scale_filters(n) for n in range(9)] == [32, 32, 32, 32, 64, 64, 64, 64, 128]


@pytest.mark.parametrize("section, key, value", [("singan", "sample_size", [1.0, 1.0, 1.0]),
                                                  ("train", "collapse_d_accuracy", [0.1, 0.5, 0.9])])
def test_a_pair_key_refuses_a_third_value(tmp_path, section, key, value):
    raw = {"model": {"task": "singan"}} if section == "singan" else {}
    raw[section] = {key: value}
    with pytest.raises(ConfigError, match=rf"\[{section}\] {key} = .*exactly 2"):
        validate(raw, tmp_path / "train_eval_infer.config")


def test_a_scale_generator_keeps_its_size_and_the_critic_scores_patches():
    generator, critic = build_scale_generator(16, 5), build_scale_discriminator(16, 5)
    noise, previous = np.zeros((2, 25, 31, 1), np.float32), np.full((2, 25, 31, 1), 0.3, np.float32)
    assert generator([noise, previous]).shape == (2, 25, 31, 1)
    assert critic(previous).shape == (2, 15, 21, 1)  # one score per 11-px patch


def test_losses_against_hand_computed_values():
    real_scores, fake_scores = tf.constant([[1.0, 3.0]]), tf.constant([[0.5, -0.5]])
    # mean D(fake) - mean D(real) + 0.1 * GP = 0 - 2 + 0.1 * 4
    assert float(critic_loss(real_scores, fake_scores, tf.constant([4.0]), 0.1)) == pytest.approx(-1.6)
    real, rebuilt = tf.constant([[[[0.0], [1.0]], [[0.5], [-0.5]]]]), tf.constant([[[[0.5], [1.0]], [[0.0], [-0.5]]]])
    total, reconstruction = generator_loss(fake_scores, rebuilt, real, 10.0)
    assert float(reconstruction) == pytest.approx((0.25 + 0 + 0.25 + 0) / 4)  # MSE of the fixed noise path
    assert float(total) == pytest.approx(-0.0 + 10.0 * 0.125)
    # A linear critic D(x) = sum(w x) has gradient w everywhere: GP = (|w| - 1)^2 whatever the interpolate.
    x, y = tf.random.normal([3, 2, 2, 1], seed=1), tf.random.normal([3, 2, 2, 1], seed=2)
    for weight, expected in ((0.5, 0.0), (1.0, 1.0), (2.0, 9.0)):
        penalty = gradient_penalty(lambda images, w=weight: tf.reduce_sum(w * images, axis=[1, 2, 3]), x, y, seed=tf.constant([1, 2]))
        np.testing.assert_allclose(penalty.numpy(), [expected] * 3, atol=1e-5)  # |w| = 2·weight over 4 pixels


def _settings(steps: int) -> ScaleSettings:
    return ScaleSettings(filters=8, max_filters=8, layers=3, steps=steps, d_steps=3, g_steps=3, learning_rate=5e-4,
                         lr_decay_step=0, lr_decay_factor=0.1, gp_weight=0.1, reconstruction_weight=10.0, noise_amp=0.1,
                         tile_every=1000, tile_count=2)


def test_training_improves_the_reconstruction_and_samples_differ(prepared_sample, tmp_path):
    config = load_config(_config(tmp_path, prepared_sample))
    patch = chosen_patches(config, config.dataset.train_dir, "train_dir")[0]
    assert patch.row["lesion_class"] == "mass" and patch.image.shape == (32, 32)
    pyramid = pyramid_for(32, 32, min_size=16, num_scales=2)
    state = train_patch(patch, tmp_path / "bank", pyramid, _settings(120), seed=5)
    assert state["reconstruction_rmse"][0] < 0.5 * state["initial_rmse"][0]  # the untrained generator's reconstruction
    assert state["reconstruction_rmse"][1] < state["initial_rmse"][1]
    assert state["amplitudes"][0] == 1.0 and 0 < state["amplitudes"][1] < 0.1  # noise_amp × RMSE of the coarser reconstruction
    model, _ = SinGAN.load(tmp_path / "bank")
    samples = np.stack(model.sample(4, seed=3))
    assert samples.shape == (4, 32, 32)
    np.testing.assert_array_equal(samples, np.stack(model.sample(4, seed=3)))  # a seed gives the same samples
    pairwise = [np.abs(samples[i] - samples[j]).mean() for i in range(4) for j in range(i + 1, 4)]
    assert min(pairwise) > 0.005
    assert np.abs(samples - patch.image).mean(axis=(1, 2)).min() > 0.005
    injected = np.stack(model.sample(4, seed=3, injection_scale=1, inject=patch.image))
    # injection at the finest scale keeps the source's geometry: much closer to it than random samples
    assert np.abs(injected - patch.image).mean() < 0.5 * np.abs(samples - patch.image).mean()
    wide = model.sample(1, seed=3, size=(1.0, 1.5))[0]
    assert wide.shape == (32, 48)
    assert (tmp_path / "bank" / "pyramid.png").is_file()


def test_16_bit_patches_give_16_bit_samples_and_a_constant_patch_fails_alone(prepared_sample, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(prepared_sample / "patches", data / "patches")
    for png in (data / "patches").glob("*/images/*.png"):  # the same patches as a 16-bit preparation writes them
        cv2.imwrite(str(png), cv2.imread(str(png), cv2.IMREAD_UNCHANGED).astype(np.uint16) * 257)
    first, second = sorted((data / "patches" / "train" / "images").glob("*mass0_z1.png"))[:2]
    cv2.imwrite(str(first), np.zeros((64, 64), np.uint16))  # a lesion box that fell outside the breast
    path = _config(tmp_path, data, steps_per_scale=2, num_scales=1)
    assert main(["train", str(path)]) == 2  # the other patch is trained, the run says one failed
    with (tmp_path / "output" / "manifest.csv").open() as handle:
        rows = {row["patch"]: row for row in csv.DictReader(handle)}
    assert rows[first.name]["status"] == "failed" and "every pixel is 0" in rows[first.name]["error"]
    assert rows[second.name]["status"] == "trained"
    assert main(["infer", str(path)]) == 0
    sample = cv2.imread(str(tmp_path / "output" / "inference" / "images" / f"{second.stem}_singan_s7_000.png"), cv2.IMREAD_UNCHANGED)
    source = cv2.imread(str(second), cv2.IMREAD_UNCHANGED)
    assert sample.dtype == np.uint16 and source.min() <= sample.min() < sample.max() <= source.max()


def test_bank_trains_evaluates_and_samples_with_masks_when_injected(prepared_sample, tmp_path):
    path = _config(tmp_path, prepared_sample, injection_scale=1, workers=2)
    assert main(["train", str(path)]) == 0
    output = tmp_path / "output"
    with (output / "manifest.csv").open() as handle:
        bank = list(csv.DictReader(handle))
    assert [row["status"] for row in bank] == ["trained", "trained"] and {row["class"] for row in bank} == {"mass"}
    assert sorted(p.name for p in (output / "bank" / Path(bank[0]["patch"]).stem / "tiles").iterdir()) == [
        "scale00_step00015.png", "scale00_step00030.png", "scale01_step00015.png", "scale01_step00030.png"]
    finished = {p: p.stat().st_mtime_ns for p in (output / "bank").rglob("scale_*")}
    assert main(["train", str(path)]) == 0  # a finished bank trains nothing again
    assert {p: p.stat().st_mtime_ns for p in (output / "bank").rglob("scale_*")} == finished
    assert (output / "train.log").read_text().count("already trained") == 2
    assert main(["evaluate", str(path)]) == 0
    with (output / "evaluation" / "singan.csv").open() as handle:
        per_patch = list(csv.DictReader(handle))
    assert [row["patch"] for row in per_patch] == [row["patch"] for row in bank] + ["mean"]
    for row in per_patch:
        assert 0 < float(row["sifid"]) and 0 < float(row["ssim_to_source_mean"]) < 1 and float(row["samples"]) == 4
        assert float(row["sifid_noise"]) > 0 and float(row["sifid_other_sources"]) > 0
    with (output / "evaluation" / "evaluation.csv").open() as handle:
        arms = {row["arm"]: row for row in csv.DictReader(handle)}
    assert set(arms) == {"generator", "gaussian_noise", "real_train"} and int(arms["generator"]["samples"]) == 8
    assert int(arms["generator"]["real"]) == 2  # the test split's mass patches of zoom 1 only
    assert main(["infer", str(path)]) == 0
    with (output / "inference" / "manifest.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == 6 and {row["injection_scale"] for row in written} == {"1"}
    assert all((output / "inference" / "masks" / row["mask"]).is_file() for row in written)
    # the folder is a utility arm as it is: the bank's training split is not a held-out one, and its samples are lesions
    arm = synthetic_patches(load_config(path), output / "inference", 6, 32, held_out=patch_names(prepared_sample / "patches" / "test"))
    assert arm.images.shape == (6, 32, 32) and set(arm.labels) == {CLASSES.index("lesion")}
    # harmonisation: one given image injected into every SinGAN; its samples follow that image, and carry no mask
    given = sorted((prepared_sample / "patches" / "test" / "images").glob("*normal*.png"))[0]
    path = _config(tmp_path, prepared_sample, injection_scale=1, workers=2, inject_image=str(given))
    assert main(["infer", str(path)]) == 0
    with (output / "inference" / "manifest.csv").open() as handle:
        injected = list(csv.DictReader(handle))
    assert len(injected) == 6 and "mask" not in injected[0]
    target = cv2.resize(cv2.imread(str(given), cv2.IMREAD_UNCHANGED), (32, 32), interpolation=cv2.INTER_AREA) / 255.0
    for row in injected:
        sample = cv2.imread(str(output / "inference" / "images" / row["image"]), cv2.IMREAD_UNCHANGED) / 255.0
        source = cv2.imread(str(prepared_sample / "patches" / "train" / "images" / row["source_patch"]), cv2.IMREAD_UNCHANGED)
        source = cv2.resize(source, (32, 32), interpolation=cv2.INTER_AREA) / 255.0
        assert np.abs(sample - target).mean() < 0.5 * np.abs(sample - source).mean()


def test_a_killed_bank_resumes_at_the_scale_it_was_on_and_skips_finished_patches(prepared_sample, tmp_path):
    path = _config(tmp_path, prepared_sample, max_patches=1, steps_per_scale=40)
    config = load_config(path)
    patch = chosen_patches(config, config.dataset.train_dir, "train_dir")[0].stem
    entry = tmp_path / "output" / "bank" / patch
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    process = subprocess.Popen([sys.executable, "-m", "mammogan", "train", str(path)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (entry / "pyramid.json").is_file():  # its first scale is finished
        assert process.poll() is None and time.time() < deadline, "the bank finished or stalled before the kill"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in entry.glob("scale_00_*")}
    assert main(["train", str(path)]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in entry.glob("scale_00_*")} == finished  # scale 1 was not trained again
    assert (entry / "scale_01_generator.keras").is_file()
    assert f"{patch}.png: resuming at scale 2 of 2" in (tmp_path / "output" / "train.log").read_text()

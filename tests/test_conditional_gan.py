"""Conditional GAN (ACGAN + projection): class-balanced sampler, auxiliary loss, train → per-class infer, config errors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mammogan.cli import main
from mammogan.data.images import read_image
from mammogan.models.io import load_model
from mammogan.models.sampling import sample_images
from mammogan.losses.adversarial import auxiliary_class_loss
from mammogan.families.conditional import ClassBalancedSampler

DRAWS = 3000
EXPECTED_COUNTS = [1004, 978, 1018]  # seed 5, weights 1:1:1


def imbalanced_sampler(seed: int = 5, weights: list[float] | None = None) -> ClassBalancedSampler:
    """100 patches: 90 of class 0, 9 of class 1, 1 of class 2; each patch's value is its index."""
    labels = np.array([0] * 90 + [1] * 9 + [2])
    patches = np.arange(100, dtype=np.float32)[:, None, None] * np.ones((1, 4, 4), np.float32)
    return ClassBalancedSampler(patches, labels, weights or [1.0, 1.0, 1.0], flips=False, seed=seed)


def test_balanced_sampler_draws_classes_uniformly_from_imbalanced_labels():
    sampler = imbalanced_sampler()
    draws = [sampler.sample(i) for i in range(DRAWS)]
    counts = np.bincount([label for _, label in draws], minlength=3)
    assert counts.tolist() == EXPECTED_COUNTS  # exact for seed 5
    assert np.all(np.abs(counts - DRAWS / 3) < 0.05 * DRAWS)  # vs 2700 / 270 / 30 by frequency
    # Every patch drawn belongs to the drawn class.
    assert all(sampler.labels[int(patch[0, 0, 0])] == label for patch, label in draws)
    weighted = np.bincount([imbalanced_sampler(weights=[2.0, 1.0, 1.0]).sample(i)[1] for i in range(DRAWS)], minlength=3)
    assert abs(weighted[0] / DRAWS - 0.5) < 0.03


def test_balanced_sampler_is_deterministic_and_resumable():
    batches = list(imbalanced_sampler().dataset(8, 0).take(4).as_numpy_iterator())
    resumed = next(imbalanced_sampler().dataset(8, 16).as_numpy_iterator())  # step 2 of batch 8
    np.testing.assert_array_equal(resumed[0], batches[2][0])
    np.testing.assert_array_equal(resumed[1], batches[2][1])
    other = list(imbalanced_sampler(seed=6).dataset(8, 0).take(4).as_numpy_iterator())
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(batches, other))


def test_auxiliary_class_loss_is_softmax_cross_entropy():
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0], [-3.0, 4.0, 1.0]], np.float32)
    labels = np.array([0, 2, 2])
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    expected = -log_softmax[np.arange(3), labels]
    np.testing.assert_allclose(expected[1], np.log(3.0), rtol=1e-6)
    np.testing.assert_allclose(auxiliary_class_loss(logits, labels[:, None]).numpy(), expected, rtol=1e-5)


def write_config(folder: Path, data: Path, classes: list[str]) -> Path:
    """Tiny conditional run on the prepared sample (its patches are 'normal' and 'mass')."""
    patches = data / "patches"
    path = folder / "acgan.config"
    path.write_text(f"""
[model]
task = "conditional"
generator = "conditional_dcgan"
discriminator = "conditional_dcgan"
classes = {classes!r}
image_size = 32
latent_dim = 16
filters = 8
d_filters = 8

[dataset]
train_dir = "{patches / 'train'}"
valid_dir = "{patches / 'valid'}"
test_dir = "{patches / 'test'}"

[train]
output_dir = "./run"
batch_size = 8
gan_steps = 40
steps_per_epoch = 20
tile_images = 2

[eval]
output_dir = "./run/evaluation"
num_samples = 16
kid_subsets = 5
kid_subset_size = 8

[infer]
output_dir = "./run/synthetic"
num_samples = 5
seed = 3
""".replace("'", '"'))
    return path


@pytest.fixture(scope="module")
def conditional_run(prepared_sample, tmp_path_factory) -> Path:
    """The tiny normal/mass conditional GAN trained once (40 steps); returns its config."""
    config = write_config(tmp_path_factory.mktemp("acgan"), prepared_sample, ["normal", "mass"])
    assert main(["train", str(config)]) == 0
    return config


def test_train_then_infer_writes_per_class_samples(conditional_run):
    config = conditional_run
    run = config.parent / "run"
    with (run / "train_metrics.csv").open(newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    assert int(last["step"]) == 40
    assert 0.0 <= float(last["val/fake_class_accuracy"]) <= 1.0 and "val/mass/moment_distance" in last
    assert main(["infer", str(config)]) == 0
    out = run / "synthetic"
    with (out / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["class"] for row in rows] == ["normal"] * 5 + ["mass"] * 5
    images = [read_image(out / "images" / row["image"]) for row in rows]
    assert len(list((out / "images").glob("*.png"))) == 10
    assert all(image.shape == (32, 32) and image.dtype == np.uint8 for image in images)
    # Same latent seed, different class: the class changes the image.
    assert not np.array_equal(images[0], images[5])
    # `evaluate` samples through sample_images: without labels a conditional generator gets balanced classes.
    generator = load_model(run / "models" / "best" / "generator.keras")
    balanced = sample_images(generator, 4, 16, 3)
    np.testing.assert_array_equal(balanced, sample_images(generator, 4, 16, 3, labels=np.array([0, 1, 0, 1])))
    np.testing.assert_array_equal(np.round(balanced[0] * 255).astype(np.uint8), images[0])


def test_unknown_class_in_config_is_a_config_error(prepared_sample, tmp_path, log_text):
    config = write_config(tmp_path, prepared_sample, ["normal", "mass", "calcification"])
    assert main(["train", str(config)]) != 0
    message = log_text()
    assert "[model] classes" in message and "calcification" in message and str(config) in message


def test_label_missing_from_classes_is_a_data_error_naming_metadata(prepared_sample, tmp_path, log_text):
    config = write_config(tmp_path, prepared_sample, ["normal", "calcification"])
    assert main(["train", str(config)]) != 0
    message = log_text()
    assert "metadata.csv" in message and "'mass'" in message


def test_evaluate_reports_kid_within_each_class(conditional_run):
    """A balanced conditional sample is judged per class; the noise baseline has no classes."""
    assert main(["evaluate", str(conditional_run)]) == 0
    with (conditional_run.parent / "run" / "evaluation" / "evaluation.csv").open(newline="") as handle:
        rows = {row["arm"]: row for row in csv.DictReader(handle)}
    for arm in ("generator", "step0_generator", "real_train"):
        per_class = [float(rows[arm]["kid_normal"]), float(rows[arm]["kid_mass"])]
        assert all(np.isfinite(per_class))
        assert float(rows[arm]["kid_class_mean"]) == pytest.approx(np.mean(per_class), rel=1e-4)
    assert rows["gaussian_noise"]["kid_normal"] == "" and rows["gaussian_noise"]["kid_class_mean"] == ""
    # Real training patches are much closer to the real patches of their own class than untrained samples are.
    assert float(rows["real_train"]["kid_class_mean"]) < float(rows["step0_generator"]["kid_class_mean"])

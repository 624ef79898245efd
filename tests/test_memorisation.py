"""Memorisation check on real patches of the bundled sample: copies (also flipped) are flagged, noise and
other patients' patches are not; the GAN evaluator reports it and the inferencer drops flagged samples."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mammogan.cli import main
from mammogan.data.images import read_image
from mammogan.data.patch_dataset import load_patches
from mammogan.metrics.memorisation import check_memorisation, patch_names, ssim_matrix
from mammogan.metrics.full_reference import ssim
from mammogan.registry import FEATURE_EXTRACTORS

LATENT = 8
SEED = 7
SAMPLES = 10


@pytest.fixture(scope="module")
def patches(prepared_sample) -> Path:
    """64² patches of the bundled sample, split by patient."""
    return prepared_sample / "patches"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_ssim_matrix_equals_registered_ssim(patches):
    images = load_patches(patches / "train", 64)[:6]
    odd = np.random.default_rng(0).random((3, 37, 45)).astype(np.float32)
    for queries, candidates in ((images[:2], images), (odd[:1], odd)):
        fast = ssim_matrix(queries, candidates)
        for row, query in enumerate(queries):
            reference = ssim(tf.constant(candidates[..., None]), tf.constant(np.broadcast_to(query, candidates.shape)[..., None]), 1.0)
            np.testing.assert_allclose(fast[row], reference.numpy(), atol=2e-4)  # float32 cancellation in E[xy] - μxμy


def test_copies_are_flagged_and_noise_and_other_patients_are_not(patches, tmp_path):
    training, names = load_patches(patches / "train", 64), patch_names(patches / "train")
    held_out = load_patches(patches / "test", 64), patch_names(patches / "test")
    rng = np.random.default_rng(1)
    synthetic = np.stack([
        training[3],  # exact copy
        training[7][:, ::-1],  # left-right flipped copy
        np.rot90(training[11], 1),  # rotated copy
        *rng.random((3, 64, 64)),  # uniform noise
        *np.clip(rng.normal(training.mean(), training.std(), (2, 64, 64)), 0, 1),  # noise with the patches' mean/std
    ]).astype(np.float32)
    synthetic_names = [f"s{i}.png" for i in range(len(synthetic))]
    extractor = FEATURE_EXTRACTORS.get("random_cnn")(seed=3)
    report = check_memorisation(synthetic, synthetic_names, training, names, extractor, ssim_threshold=0.95,
                                cosine_threshold=0.998, output_dir=tmp_path, pairs=4, held_out=held_out)

    assert report.near_copy.tolist() == [True, True, True] + [False] * 5
    assert not report.held_out.near_copy.any()  # other patients' real patches stay below the default thresholds
    rows = {row["image"]: row for row in read_csv(tmp_path / "memorisation.csv") if row["set"] == "synthetic"}
    expected = {"s0.png": (names[3], "identity"), "s1.png": (names[7], "flip"), "s2.png": (names[11], "rot90")}
    for name, (nearest, orientation) in expected.items():
        assert rows[name]["ssim_nearest"] == rows[name]["cosine_nearest"] == nearest
        assert float(rows[name]["ssim"]) > 0.999 and float(rows[name]["cosine"]) > 0.999
        assert rows[name]["ssim_orientation"] == orientation
    assert max(float(rows[f"s{i}.png"]["ssim"]) for i in range(3, 8)) < 0.3
    summary = {row["set"]: row for row in read_csv(tmp_path / "memorisation_summary.csv")}
    assert summary["synthetic"]["near_copies"] == "3" and summary["held_out_real"]["near_copies"] == "0"
    assert summary["synthetic"]["extractor"] == "random_cnn:seed3:untrained"
    pairs = sorted((tmp_path / "memorisation_pairs").glob("*.png"))
    assert len(pairs) == 4 and all(p.name.split("_", 1)[1].startswith(("s0", "s1", "s2")) for p in pairs[:3])
    pair = read_image(pairs[0])
    assert pair.shape == (128, 3 * 128 + 2 * 4)  # synthetic | SSIM-nearest | cosine-nearest, 2× upscaled
    assert np.array_equal(pair[:, :128], pair[:, 132:260])  # an exact copy beside its (oriented) training patch


def copying_generator(patch: np.ndarray) -> keras.Model:
    """Latent → the given patch (as a tanh output) when latent[0] < 0, saturated noise otherwise."""
    latent = keras.Input((LATENT,))
    gate = keras.layers.Dense(1, activation="relu")(latent)
    image = keras.layers.Dense(patch.size, activation="tanh")(gate)
    model = keras.Model(latent, keras.layers.Reshape((*patch.shape, 1))(image))
    first = np.zeros((LATENT, 1), np.float32)
    first[0, 0] = 1000.0
    model.layers[1].set_weights([first, np.zeros(1, np.float32)])
    noise = np.where(np.random.default_rng(5).random(patch.size) < 0.5, -1.0, 1.0).astype(np.float32)
    model.layers[2].set_weights([noise[None], np.arctanh(np.clip(patch.ravel() * 2 - 1, -0.999, 0.999)).astype(np.float32)])
    return model


@pytest.fixture(scope="module")
def gan_project(patches, tmp_path_factory) -> Path:
    """A 'trained' GAN run whose generator copies a flipped training patch for half of the latents."""
    root = tmp_path_factory.mktemp("gan")
    patch = load_patches(patches / "train", 64)[0][:, ::-1]
    (root / "output" / "models" / "best").mkdir(parents=True)
    copying_generator(patch).save(root / "output" / "models" / "best" / "generator.keras")
    return root


def write_config(project: Path, patches: Path, reject: bool) -> Path:
    path = project / "train_eval_infer.config"
    path.write_text(
        f'[model]\ntask = "dcgan"\nimage_size = 64\nlatent_dim = {LATENT}\n'
        f'[dataset]\ntrain_dir = "{patches / "train"}"\ntest_dir = "{patches / "test"}"\n'
        '[train]\noutput_dir = "./output"\n'
        '[eval]\noutput_dir = "./output/evaluation"\nnum_samples = 10\nkid_subsets = 5\nkid_subset_size = 8\ncomparison_crops = 2\n'
        f'[infer]\noutput_dir = "./output/synthetic"\nnum_samples = {SAMPLES}\nseed = {SEED}\nreject_near_copies = {str(reject).lower()}\n')
    return path


def copied_indices() -> list[int]:
    latents = np.random.default_rng(SEED).standard_normal((SAMPLES, LATENT))
    return [i for i in range(SAMPLES) if latents[i, 0] < 0]


def test_inferencer_drops_near_copies_and_lists_them(gan_project, patches):
    copies = copied_indices()
    assert 0 < len(copies) < SAMPLES
    images = gan_project / "output" / "synthetic" / "images"
    assert main(["infer", str(write_config(gan_project, patches, reject=False))]) == 0
    assert len(list(images.glob("*.png"))) == SAMPLES

    assert main(["infer", str(write_config(gan_project, patches, reject=True))]) == 0
    manifest = read_csv(gan_project / "output" / "synthetic" / "manifest.csv")
    rejected = [int(row["index"]) for row in manifest if row["status"] == "rejected_near_copy"]
    assert len(manifest) == SAMPLES and rejected == copies
    assert sorted(p.name for p in images.glob("*.png")) == sorted(row["image"] for row in manifest if row["status"] == "written")
    assert all(float(row["nearest_ssim"]) > 0.99 for row in manifest if row["status"] != "written")
    assert all(float(row["nearest_ssim"]) < 0.5 for row in manifest if row["status"] == "written")
    assert (gan_project / "output" / "synthetic" / "memorisation_summary.csv").is_file()


def test_gan_evaluator_reports_memorisation(gan_project, patches):
    assert main(["evaluate", str(write_config(gan_project, patches, reject=False))]) == 0
    folder = gan_project / "output" / "evaluation"
    assert {row["arm"] for row in read_csv(folder / "evaluation.csv")} >= {"generator", "gaussian_noise", "real_train"}
    rows = read_csv(folder / "memorisation.csv")
    flagged = sorted(int(row["image"][-9:-4]) for row in rows if row["set"] == "synthetic" and row["near_copy"] == "True")
    assert flagged == copied_indices()  # the same latents as `infer`, named alike
    held_out = [row for row in rows if row["set"] == "held_out_real"]
    assert {row["image"] for row in held_out} == set(patch_names(patches / "test"))
    assert not any(row["near_copy"] == "True" for row in held_out)
    assert len(list((folder / "memorisation_pairs").glob("*.png"))) == 2

"""`[dataset] synthetic_dirs` / `synthetic_ratio`: GAN `infer` output mixed into PatchGAN training data."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mammogan.config import load_config
from mammogan.data.images import write_png
from mammogan.errors import ConfigError, DataError
from mammogan.registry import FAMILIES

BATCH = 8
BATCHES = 50


def infer_folder(folder: Path, count: int) -> Path:
    """A folder laid out like a GAN `infer` output: white images (unlike any real patch) + manifest.csv."""
    rows = []
    for index in range(count):
        name = f"sample_{index:03d}.png"
        write_png(folder / "images" / name, np.full((32, 32), 255, np.uint8))
        rows.append({"image": name, "seed": 7, "index": index, "checkpoint": "generator.keras", "task": "dcgan", "status": ""})
    rows.append({"image": "sample_999.png", "seed": 7, "index": 999, "checkpoint": "generator.keras", "task": "dcgan",
                 "status": "rejected_near_copy"})  # left out by reject_near_copies: no file, must be skipped
    with (folder / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def config_with(tmp_path: Path, data: Path, dataset: str, seed: int = 1234) -> Path:
    path = tmp_path / "train_eval_infer.config"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""
        [model]
        task = "dcgan"
        generator = "dcgan"
        discriminator = "dcgan"
        image_size = 32

        [dataset]
        train_dir = "{data / 'patches' / 'train'}"
        valid_dir = "{data / 'patches' / 'valid'}"
        """) + textwrap.dedent(dataset) + f"\n[train]\nbatch_size = {BATCH}\nseed = {seed}\n")
    return path


def synthetic_counts(path: Path, start_step: int = 0) -> list[int]:
    """White (synthetic) images per training batch drawn by the dcgan task."""
    task = FAMILIES.get("dcgan")(load_config(path), tf.distribute.get_strategy())
    assert not np.any(task.train_images.reshape(len(task.train_images), -1).min(axis=1) == 1.0)
    counts = []
    for batch in task.train_dataset(start_step).take(BATCHES):
        counts.append(int(np.sum(batch.numpy().reshape(BATCH, -1).min(axis=1) == 1.0)))
    return counts


def test_synthetic_images_are_drawn_at_the_configured_ratio(prepared_sample, tmp_path):
    infer_folder(tmp_path / "synthetic_a", 5)
    infer_folder(tmp_path / "synthetic_b", 3)
    dataset = 'synthetic_dirs = ["synthetic_a", "synthetic_b"]\nsynthetic_ratio = 0.5\n'  # relative to the config
    path = config_with(tmp_path, prepared_sample, dataset)
    counts = synthetic_counts(path)
    draws, synthetic = BATCH * BATCHES, sum(counts)
    expected = draws * 0.5 / 1.5  # one synthetic per two real
    assert abs(synthetic - expected) < 4 * np.sqrt(draws * (1 / 3) * (2 / 3))  # 400 draws: 133 ± 38
    assert (draws - synthetic) / synthetic == pytest.approx(2.0, rel=0.35)
    assert synthetic == 131  # seed 1234: draw i is synthetic iff default_rng([1234, i]).random() < 1/3
    assert synthetic_counts(path) == counts  # exactly reproducible for a seed
    assert synthetic_counts(path, start_step=10) == counts[10:] + synthetic_counts(path, start_step=BATCHES)[:10]  # resumable
    other = config_with(tmp_path / "other", prepared_sample, dataset.replace('"synthetic_', '"../synthetic_'), seed=99)
    assert synthetic_counts(other) != counts


def test_without_synthetic_dirs_the_stream_is_real_only(prepared_sample, tmp_path):
    assert sum(synthetic_counts(config_with(tmp_path, prepared_sample, ""))) == 0


@pytest.mark.parametrize("make, message", [
    (lambda folder: None, "does not exist"),
    (lambda folder: write_png(folder / "images" / "a.png", np.zeros((32, 32), np.uint8)), "has no manifest.csv"),
])
def test_bad_synthetic_folder_is_a_data_error_naming_the_key(prepared_sample, tmp_path, make, message):
    make(tmp_path / "synthetic")
    path = config_with(tmp_path, prepared_sample, 'synthetic_dirs = ["synthetic"]\nsynthetic_ratio = 1.0\n')
    with pytest.raises(DataError, match=message) as error:
        FAMILIES.get("dcgan")(load_config(path), tf.distribute.get_strategy())
    assert "[dataset] synthetic_dirs" in str(error.value) and str(tmp_path / "synthetic") in str(error.value)


def test_ratio_without_folders_is_a_config_error(prepared_sample, tmp_path):
    path = config_with(tmp_path, prepared_sample, "synthetic_ratio = 1.0\n")
    with pytest.raises(ConfigError, match="synthetic_dirs"):
        FAMILIES.get("dcgan")(load_config(path), tf.distribute.get_strategy())


def test_srgan_rejects_synthetic_dirs(prepared_sample, tmp_path):
    path = tmp_path / "train_eval_infer.config"
    path.write_text(textwrap.dedent(f"""
        [model]
        task = "srgan"
        [dataset]
        train_dir = "{prepared_sample / 'train'}"
        valid_dir = "{prepared_sample / 'valid'}"
        synthetic_dirs = ["synthetic"]
        synthetic_ratio = 1.0
        """))
    with pytest.raises(ConfigError, match=r"\[dataset\] synthetic_dirs.*srgan"):
        FAMILIES.get("srgan")(load_config(path), tf.distribute.get_strategy())

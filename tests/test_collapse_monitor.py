"""The Trainer's mode-collapse monitor: a forced collapse is flagged, rolled back to the last good checkpoint and retried."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mammogan.config import load_config
from mammogan.registry import GENERATORS, FAMILIES
from mammogan.train.collapse import TrainingCollapsed, constant_fraction, mean_pairwise_distance
from mammogan.families.patch_gan import PatchGAN
from mammogan.train.trainer import Trainer


class ZeroingTask(PatchGAN):
    """DCGAN whose generator's output layer is zeroed in one validation (every sample becomes flat grey)."""

    collapse_at_validation = 3

    def __init__(self, config, strategy) -> None:
        super().__init__(config, strategy)
        self.validations = 0
        self.dataset_starts: list[int] = []
        self.restored: list[tuple[list[np.ndarray], float]] = []

    def train_dataset(self, step: int) -> tf.data.Dataset:
        self.dataset_starts.append(step)
        return super().train_dataset(step)

    def validate(self) -> dict[str, float]:
        if self.validations == self.collapse_at_validation:
            last = [layer for layer in self.generator.layers if layer.weights][-1]
            for weight in last.weights:
                weight.assign(tf.zeros_like(weight))
        self.validations += 1
        return super().validate()

    def reduce_learning_rate(self, factor: float) -> None:
        # The Trainer calls this right after restoring the pre-collapse checkpoint: record what was restored.
        self.restored.append(([w.numpy() for w in self.generator.weights], float(self.g_optimizer.learning_rate.numpy())))
        super().reduce_learning_rate(factor)


FAMILIES.register("test_zeroing_dcgan")(ZeroingTask)


def write_config(folder: Path, data: Path, train: str) -> Path:
    path = folder / "train_eval_infer.config"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""
        [model]
        task = "test_zeroing_dcgan"
        generator = "dcgan"
        discriminator = "dcgan"
        image_size = 32
        latent_dim = 16
        filters = 8
        d_filters = 8

        [dataset]
        train_dir = "{data / 'patches' / 'train'}"
        valid_dir = "{data / 'patches' / 'valid'}"

        [train]
        output_dir = "./output"
        batch_size = 8
        steps_per_epoch = 4
        g_learning_rate = 2e-4
        d_learning_rate = 2e-4
        beta_1 = 0.5
        ema_decay = 0.0
        collapse_diversity = 0.01
        collapse_patience = 1
        """) + textwrap.dedent(train))
    return path


def test_forced_collapse_rolls_back_to_the_last_good_checkpoint(prepared_sample, tmp_path):
    config = load_config(write_config(tmp_path / "run", prepared_sample, """
        gan_steps = 16
        keep_checkpoints = 10
        collapse_rollback = true
        collapse_max_rollbacks = 2
        lr_decay_factor = 0.5
    """))
    trainer = Trainer(config)
    trainer.fit(resume=False)
    task = trainer.task
    output = tmp_path / "run" / "output"
    log = (output / "train.log").read_text()
    # Validation 3 is epoch 3 (step 12): flagged, so the run restores ckpt-8 (epoch 2) and trains steps 9-16 again.
    assert "Collapse monitor: epoch 3 (step 12) flagged" in log and "sample diversity 0 of the real images'" in log
    assert "rolled back to" in log and "ckpt-8 (step 8, epoch 2)" in log
    assert trainer.monitor.rollbacks == 1 and task.dataset_starts == [0, 8]
    assert int(trainer.step.numpy()) == 16 and int(task.g_optimizer.iterations.numpy()) == 16

    weights, learning_rate = task.restored[0]
    fresh = GENERATORS.get("dcgan")(**config.arguments_for("generator", "dcgan"))
    tf.train.Checkpoint(generator=fresh).restore(str(output / "checkpoints" / "ckpt-8")).expect_partial()
    assert all(np.array_equal(a, b) for a, b in zip(weights, [w.numpy() for w in fresh.weights]))
    assert learning_rate == pytest.approx(2e-4) and float(task.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)

    with (output / "train_metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]  # the collapsed epoch 3 was trained again
    assert all(float(r["monitor/diversity_ratio"]) >= 0.01 for r in rows) and rows[-1]["monitor/rollbacks"] == "1"
    assert all(0.0 <= float(r["monitor/d_real_accuracy"]) <= 1.0 for r in rows)


def test_without_rollback_the_monitor_only_warns(prepared_sample, tmp_path):
    trainer = Trainer(load_config(write_config(tmp_path / "run", prepared_sample, "gan_steps = 12\n")))
    trainer.fit(resume=False)
    log = (tmp_path / "run" / "output" / "train.log").read_text()
    assert "Collapse monitor: epoch 3 (step 12) flagged (1 of 1 in a row)" in log and "rolled back" not in log
    assert trainer.monitor.rollbacks == 0 and int(trainer.step.numpy()) == 12 and trainer.task.dataset_starts == [0]


def test_collapse_beyond_max_rollbacks_stops_with_a_clear_error(prepared_sample, tmp_path):
    config = load_config(write_config(tmp_path / "run", prepared_sample, """
        gan_steps = 16
        collapse_rollback = true
        collapse_max_rollbacks = 0
    """))
    with pytest.raises(TrainingCollapsed, match=r"collapsed at epoch 3 \(step 12\).*collapse_max_rollbacks = 0"):
        Trainer(config).fit(resume=False)


def test_rollback_needs_more_checkpoints_than_patience(prepared_sample, tmp_path):
    from mammogan.errors import ConfigError

    path = write_config(tmp_path / "run", prepared_sample, "collapse_rollback = true\n")
    path.write_text(path.read_text().replace("collapse_patience = 1", "collapse_patience = 3"))
    with pytest.raises(ConfigError, match="keep_checkpoints"):
        Trainer(load_config(path))


def test_diversity_statistics_on_known_images():
    flat = np.full((4, 8, 8), 0.5)
    assert mean_pairwise_distance(flat) == 0.0 and constant_fraction(flat) == 1.0
    pair = np.stack([np.zeros((8, 8)), np.ones((8, 8))])
    assert mean_pairwise_distance(pair) == pytest.approx(1.0)  # RMS difference of black vs white
    noise = np.random.default_rng(0).uniform(size=(32, 16, 16))
    assert mean_pairwise_distance(noise) == pytest.approx(np.sqrt(1 / 6), rel=0.02)  # E(u - v)² = 1/6
    assert constant_fraction(noise) == 0.0

"""Learning-rate reductions (plateau, collapse rollback) must also lower scheduled rates."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mammogan.config import load_config
from mammogan.train.optimizers import build_optimizer, reducible_rate


def config_with(tmp_path: Path, schedule: str) -> Path:
    path = tmp_path / "train_eval_infer.config"
    decay = "lr_decay_steps = [10]\nlr_decay_factor = 0.5\n" if schedule == "piecewise" else ""  # only it reads them
    path.write_text(f'[model]\ntask = "srgan"\n[train]\nlr_schedule = "{schedule}"\n{decay}pretrain_steps = 20\n')
    return path


@pytest.mark.parametrize("schedule", ["constant", "piecewise", "cosine"])
def test_a_reduction_scales_the_rate_at_every_step(tmp_path, schedule):
    config = load_config(config_with(tmp_path, schedule))
    reference, optimizer = build_optimizer(config, 1e-3), build_optimizer(config, 1e-3)
    rate = reducible_rate(optimizer)
    rate.assign(rate * 0.25)
    for step in (0, 5, 15):
        reference.iterations.assign(step)
        optimizer.iterations.assign(step)
        np.testing.assert_allclose(float(optimizer.learning_rate), 0.25 * float(reference.learning_rate), rtol=1e-6)


def test_a_scheduled_reduction_survives_a_checkpoint(tmp_path):
    config = load_config(config_with(tmp_path, "piecewise"))
    optimizer = build_optimizer(config, 1e-3)
    reducible_rate(optimizer).assign(0.5)
    path = tf.train.Checkpoint(rate=reducible_rate(optimizer)).save(str(tmp_path / "ckpt"))
    restored = build_optimizer(config, 1e-3)
    tf.train.Checkpoint(rate=reducible_rate(restored)).restore(path).assert_consumed()
    assert float(restored.learning_rate) == pytest.approx(5e-4)

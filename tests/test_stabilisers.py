"""DiffAugment ops and the ADA controller: values, gradients, per-example randomness and replica safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from mammogan.train.randomness import StepRandom
from mammogan.train.stabilisers import AdaptiveAugment, cutout, diff_augment, translation, translation_reflect


@pytest.mark.parametrize("channels", [1, 3])
def test_translation_shifts_each_example_by_at_most_an_eighth_with_zero_fill(channels):
    tf.random.set_seed(0)
    images = tf.ones([16, 32, 32, channels])
    shifted = translation(images, StepRandom(0, tf.constant(0))).numpy()
    assert shifted.shape == (16, 32, 32, channels)
    zero_rows = (shifted[..., 0] == 0).all(axis=2).sum(axis=1)  # rows shifted in from outside
    zero_cols = (shifted[..., 0] == 0).all(axis=1).sum(axis=1)
    assert zero_rows.max() <= 4 and zero_cols.max() <= 4  # 0.125 × 32
    assert len({(r, c) for r, c in zip(zero_rows, zero_cols)}) > 1  # per-example shifts
    assert set(np.unique(shifted)) <= {0.0, 1.0}


def test_reflect_translation_is_a_mirrored_shift_of_at_most_an_eighth_with_no_flat_band():
    tf.random.set_seed(3)
    images = tf.random.uniform([16, 32, 32, 2], 0.1, 1.0)  # no zeros: a zero fill would show
    shifted = translation_reflect(images, StepRandom(0, tf.constant(0))).numpy()
    shifts = []
    for original, moved in zip(images.numpy(), shifted):
        mirrored = np.pad(original, [(4, 4), (4, 4), (0, 0)], mode="reflect")  # (…, 2, 1, 0, 1, 2, …)
        found = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)
                 if np.array_equal(mirrored[4 + dy : 36 + dy, 4 + dx : 36 + dx], moved)]
        assert len(found) == 1  # exactly one shift within 0.125 × 32 explains the output, in both channels
        shifts.append(found[0])
    assert len(set(shifts)) > 1 and any(dy != 0 and dx != 0 for dy, dx in shifts)  # per example, on both axes
    assert shifted.min() >= 0.1  # no pixel came from outside the image


def test_cutout_zeroes_one_clipped_half_size_square_per_example():
    tf.random.set_seed(1)
    kept = cutout(tf.ones([32, 32, 32, 2]), StepRandom(0, tf.constant(0))).numpy()
    zeros = (kept[..., 0] == 0).sum(axis=(1, 2))
    assert zeros.min() >= 8 * 8 and zeros.max() <= 16 * 16  # the 16×16 square, at worst clipped to a corner quarter
    assert np.array_equal(kept[..., 0], kept[..., 1])  # the same square in every channel
    assert len(set(zeros.tolist())) > 1 or not np.array_equal(kept[0], kept[1])


def test_diff_augment_is_differentiable_and_respects_the_probability():
    tf.random.set_seed(2)
    images = tf.random.uniform([8, 16, 16, 1], -1.0, 1.0)
    with tf.GradientTape() as tape:
        tape.watch(images)
        out = diff_augment(images, ["translation", "cutout", "color"], StepRandom(0, tf.constant(0)))
        loss = tf.reduce_sum(out**2)
    gradient = tape.gradient(loss, images)
    assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0
    assert np.array_equal(diff_augment(images, ["translation", "cutout", "color"], StepRandom(0, tf.constant(1)), tf.constant(0.0)).numpy(), images.numpy())
    changed = np.abs(out.numpy() - images.numpy()).reshape(8, -1).max(axis=1) > 0
    assert changed.all()


def test_ada_moves_p_by_images_over_speed_towards_the_target():
    ada = AdaptiveAugment(target=0.6, interval=2, speed_images=40.0, batch_size=4)
    ada.observe(tf.ones([4, 1]))
    ada.update()
    assert float(ada.p.numpy()) == 0.0  # 4 of the 8 images of an interval seen: no update yet
    ada.observe(tf.constant([[1.0], [2.0], [3.0], [-1.0]]))
    ada.update()
    assert float(ada.r_t.numpy()) == pytest.approx(0.75)  # (4 + 2) / 8
    assert float(ada.p.numpy()) == pytest.approx(0.2)  # + 8 / 40
    for _ in range(2):
        ada.observe(-tf.ones([4, 3, 3, 1]))  # per-pixel logits: the per-example mean's sign counts
    ada.update()
    assert float(ada.r_t.numpy()) == -1.0 and float(ada.p.numpy()) == pytest.approx(0.0)


REPLICA_SCRIPT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from mammogan.train.randomness import StepRandom
from mammogan.train.stabilisers import AdaptiveAugment, diff_augment

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    ada = AdaptiveAugment(target=0.4, interval=1, speed_images=40.0, batch_size=8)
logits = tf.constant([[1.0]] * 6 + [[-1.0]] * 2)  # replica 0 sees 4 positives, replica 1 two of each
batches = iter(strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(logits).repeat().batch(8)))

@tf.function
def step(batch):
    def replica(x):
        ada.observe(x)
        return tf.reduce_mean(diff_augment(tf.ones([4, 8, 8, 1]), ["translation"], StepRandom(0, tf.constant(0)), ada.p))
    strategy.run(replica, args=(batch,))
    ada.update()

step(next(batches))
print("ADA", float(ada.r_t.numpy()), float(ada.p.numpy()))
step(next(batches))
print("ADA", float(ada.r_t.numpy()), float(ada.p.numpy()))
"""


def test_ada_statistics_are_summed_over_two_replicas(tmp_path):
    script = tmp_path / "ada_replicas.py"
    script.write_text(textwrap.dedent(REPLICA_SCRIPT))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    values = [tuple(map(float, line.split()[1:])) for line in result.stdout.splitlines() if line.startswith("ADA")]
    # r_t = (6 - 2) / 8 over both replicas (one replica alone would give 1.0 or 0.0); p += 8 / 40 per step.
    assert values[0] == pytest.approx((0.5, 0.2)) and values[1] == pytest.approx((0.5, 0.4))


def test_step_random_depends_only_on_seed_step_and_draw_number():
    """A resumed run re-traces the step and must draw the same numbers at the same step."""
    def draws(seed: int, step: int) -> list[np.ndarray]:
        random = StepRandom(seed, tf.constant(step, tf.int64))
        return [random.normal([4]).numpy(), random.uniform([4]).numpy()]

    first, again = draws(3, 10), draws(3, 10)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not np.array_equal(first[0], draws(3, 11)[0]) and not np.array_equal(first[0], draws(4, 10)[0])
    random = StepRandom(3, tf.constant(10, tf.int64))
    assert not np.array_equal(random.normal([4]).numpy(), random.normal([4]).numpy())  # each draw has its own seed

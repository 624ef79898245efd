"""Every registered adversarial loss and the WGAN-GP gradient penalty against numpy hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from mammogan.losses import gradient_penalty, r1_penalty
from mammogan.registry import ADVERSARIAL_LOSSES

# Fixed logits: 3 examples with 2×2 per-pixel logits (per-image logits are the 1×1 case).
REAL = np.array([[[2.0, -0.5], [0.3, 1.2]], [[-1.5, 0.0], [4.0, 0.7]], [[0.1, 0.2], [-3.0, 1.0]]], np.float32)[..., None]
FAKE = np.array([[[-2.0, 0.5], [-0.3, 0.8]], [[1.5, -4.0], [0.0, -0.7]], [[-0.1, 2.5], [3.0, -1.0]]], np.float32)[..., None]
SMOOTHING = 0.1


def bce(logits: np.ndarray, label: float) -> np.ndarray:
    """-y log σ(x) - (1 - y) log(1 - σ(x)), written the textbook way in float64."""
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return -label * np.log(p) - (1.0 - label) * np.log(1.0 - p)


def per_example(values: np.ndarray) -> np.ndarray:
    return values.reshape(len(values), -1).mean(axis=1)


def relativistic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a - b.mean(axis=0, keepdims=True)


def expected(name: str, r: np.ndarray, f: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """(discriminator, generator) per-example losses of the named objective."""
    if name == "nonsaturating":
        return per_example(bce(r, 1 - s)) + per_example(bce(f, 0)), per_example(-np.log(1 / (1 + np.exp(-f))))
    if name == "minimax":
        return per_example(bce(r, 1 - s)) + per_example(bce(f, 0)), per_example(np.log(1 - 1 / (1 + np.exp(-f))))
    if name == "lsgan":
        return 0.5 * per_example((r - (1 - s)) ** 2) + 0.5 * per_example(f**2), 0.5 * per_example((f - 1) ** 2)
    if name == "hinge":
        return per_example(np.maximum(0, 1 - r)) + per_example(np.maximum(0, 1 + f)), -per_example(f)
    if name == "wasserstein":
        return per_example(f) - per_example(r), -per_example(f)
    if name == "relativistic":
        d = per_example(bce(relativistic(r, f), 1 - s)) + per_example(bce(relativistic(f, r), 0))
        g = per_example(bce(relativistic(f, r), 1)) + per_example(bce(relativistic(r, f), 0))
        return d, g
    raise AssertionError(f"no hand computation for {name!r}: add one")


def test_every_registered_loss_has_a_hand_computation():
    assert set(ADVERSARIAL_LOSSES.names()) == {"nonsaturating", "minimax", "lsgan", "hinge", "wasserstein", "relativistic"}


@pytest.mark.parametrize("name", ["nonsaturating", "minimax", "lsgan", "hinge", "wasserstein", "relativistic"])
@pytest.mark.parametrize("smoothing", [0.0, SMOOTHING])
@pytest.mark.parametrize("pixels", [True, False])
def test_adversarial_loss_matches_hand_computation(name, smoothing, pixels):
    r, f = (REAL, FAKE) if pixels else (REAL[:, :1, :1, 0].reshape(3, 1), FAKE[:, :1, :1, 0].reshape(3, 1))
    loss = ADVERSARIAL_LOSSES.get(name)
    d_expected, g_expected = expected(name, r, f, smoothing)
    np.testing.assert_allclose(loss.discriminator(tf.constant(r), tf.constant(f), smoothing).numpy(), d_expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss.generator(tf.constant(r), tf.constant(f)).numpy(), g_expected, rtol=1e-5, atol=1e-6)


def test_label_smoothing_values_on_known_logits():
    """A real logit of 0 costs log 2 whatever the label; a huge one costs about s × logit with smoothing s."""
    loss = ADVERSARIAL_LOSSES.get("nonsaturating")
    d = loss.discriminator(tf.constant([[0.0], [20.0]]), tf.constant([[-30.0], [-30.0]]), 0.1).numpy()
    np.testing.assert_allclose(d, [np.log(2.0), 0.1 * 20.0 + np.log1p(np.exp(-20.0))], rtol=1e-5)


def linear_critic(weights: np.ndarray, seen: list | None = None):
    w = tf.constant(weights)

    def critic(x: tf.Tensor) -> tf.Tensor:
        if seen is not None:
            seen.append(x)
        return tf.reduce_sum(x * w, axis=[1, 2, 3])[:, None]

    return critic


def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(1, 4, 4, 1)).astype(np.float32)
    real = rng.uniform(size=(5, 4, 4, 1)).astype(np.float32)
    fake = rng.uniform(size=(5, 4, 4, 1)).astype(np.float32)
    penalty = gradient_penalty(linear_critic(weights), tf.constant(real), tf.constant(fake)).numpy()
    np.testing.assert_allclose(penalty, np.full(5, (np.linalg.norm(weights) - 1.0) ** 2), rtol=1e-5)


def test_r1_penalty_is_the_squared_gradient_norm_at_each_real_image():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(1, 4, 4, 1)).astype(np.float32)
    real = rng.uniform(size=(5, 4, 4, 1)).astype(np.float32)
    linear = r1_penalty(linear_critic(weights), tf.constant(real)).numpy()
    np.testing.assert_allclose(linear, np.full(5, np.sum(weights**2)), rtol=1e-5)
    squared = r1_penalty(lambda x: tf.reduce_sum(tf.square(x), axis=[1, 2, 3]), tf.constant(real)).numpy()
    np.testing.assert_allclose(squared, 4 * np.sum(real**2, axis=(1, 2, 3)), rtol=1e-5)  # ∇ of Σx² is 2x, per example


def test_gradient_penalty_interpolates_uniformly_per_example():
    real = np.zeros((4000, 2, 2, 1), np.float32)
    fake = np.ones((4000, 2, 2, 1), np.float32)
    seen: list = []
    gradient_penalty(linear_critic(np.ones((1, 2, 2, 1), np.float32), seen), tf.constant(real), tf.constant(fake),
                     seed=tf.constant([3, 4]))
    mixed = seen[0].numpy()
    alpha = mixed[:, 0, 0, 0]
    assert np.all(mixed == alpha[:, None, None, None])  # one α per example, x̂ = real + α (fake − real)
    assert 0.0 <= alpha.min() and alpha.max() < 1.0
    assert alpha.mean() == pytest.approx(0.5, abs=0.02) and alpha.std() == pytest.approx(np.sqrt(1 / 12), abs=0.01)
    assert np.histogram(alpha, bins=4, range=(0, 1))[0].min() > 900  # flat, not e.g. Beta-shaped


def test_gradient_penalty_has_epsilon_inside_the_norm():
    """At a zero gradient, sqrt(Σg² + ε) keeps the penalty's own gradient finite (sqrt(0) would give NaN)."""
    w = tf.Variable(tf.zeros([1, 3, 3, 1]))
    real, fake = tf.ones([2, 3, 3, 1]), tf.zeros([2, 3, 3, 1])
    with tf.GradientTape() as tape:
        penalty = gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3]), real, fake)
        total = tf.reduce_sum(penalty)
    gradient = tape.gradient(total, w).numpy()
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(penalty.numpy(), [1.0, 1.0], atol=1e-5)

"""Adversarial losses, implemented natively (tensorflow-gan cannot be imported on TF >= 2.16).

Each loss returns per-example values for the discriminator and the generator given the
discriminator's logits on real and on generated images; logits may be per image or per pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from ..registry import ADVERSARIAL_LOSSES

PerExample = Callable[[tf.Tensor, tf.Tensor, float], tf.Tensor]


def _per_example(values: tf.Tensor) -> tf.Tensor:
    values = tf.cast(values, tf.float32)
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def _bce(logits: tf.Tensor, label: float) -> tf.Tensor:
    logits = tf.cast(logits, tf.float32)
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), label), logits=logits)


@dataclass(frozen=True)
class AdversarialLoss:
    """A GAN objective: `discriminator(real, fake, smoothing)` and `generator(real, fake)` per example."""

    name: str
    discriminator_fn: PerExample
    generator_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]

    def discriminator(self, real_logits: tf.Tensor, fake_logits: tf.Tensor, label_smoothing: float = 0.0) -> tf.Tensor:
        return self.discriminator_fn(real_logits, fake_logits, label_smoothing)

    def generator(self, real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
        return self.generator_fn(real_logits, fake_logits)


def _register(name: str, discriminator_fn: PerExample, generator_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> None:
    ADVERSARIAL_LOSSES.register(name)(AdversarialLoss(name, discriminator_fn, generator_fn))


# Goodfellow et al. 2014 with the non-saturating generator loss; one-sided smoothing on real labels.
_register(
    "nonsaturating",
    lambda r, f, s: _per_example(_bce(r, 1.0 - s)) + _per_example(_bce(f, 0.0)),
    lambda r, f: _per_example(_bce(f, 1.0)),
)
# The original minimax generator objective: minimise log(1 - D(G(z))).
_register(
    "minimax",
    lambda r, f, s: _per_example(_bce(r, 1.0 - s)) + _per_example(_bce(f, 0.0)),
    lambda r, f: -_per_example(_bce(f, 0.0)),
)
# Least-squares GAN (Mao et al. 2017) with 0/1 targets.
_register(
    "lsgan",
    lambda r, f, s: 0.5 * _per_example(tf.square(tf.cast(r, tf.float32) - (1.0 - s))) + 0.5 * _per_example(tf.square(tf.cast(f, tf.float32))),
    lambda r, f: 0.5 * _per_example(tf.square(tf.cast(f, tf.float32) - 1.0)),
)
# Hinge loss (SNGAN, Miyato et al. 2018).
_register(
    "hinge",
    lambda r, f, s: _per_example(tf.nn.relu(1.0 - tf.cast(r, tf.float32))) + _per_example(tf.nn.relu(1.0 + tf.cast(f, tf.float32))),
    lambda r, f: -_per_example(f),
)
# Wasserstein critic loss (WGAN-GP adds the gradient penalty separately).
_register(
    "wasserstein",
    lambda r, f, s: _per_example(f) - _per_example(r),
    lambda r, f: -_per_example(f),
)


def _relativistic(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Logits of 'a is more real than the average b' (batch mean over the other set)."""
    a, b = tf.cast(a, tf.float32), tf.cast(b, tf.float32)
    return a - tf.reduce_mean(b, axis=0, keepdims=True)


# Relativistic average GAN (ESRGAN): both terms use both sets, so G also gets gradients from reals.
_register(
    "relativistic",
    lambda r, f, s: _per_example(_bce(_relativistic(r, f), 1.0 - s)) + _per_example(_bce(_relativistic(f, r), 0.0)),
    lambda r, f: _per_example(_bce(_relativistic(f, r), 1.0)) + _per_example(_bce(_relativistic(r, f), 0.0)),
)


def _squared_input_gradients(critic: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor) -> tf.Tensor:
    """‖∇ₓD(x)‖₂² per example: the critic's scores differentiated with respect to its input images."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        scores = tf.cast(critic(images), tf.float32)
    return tf.reduce_sum(tf.square(tape.gradient(scores, images)), axis=[1, 2, 3])


def gradient_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, seed: tf.Tensor | None = None) -> tf.Tensor:
    """WGAN-GP penalty per example: (‖∇D(x̂)‖₂ − 1)² at uniform interpolates x̂ (ε inside the norm)."""
    real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
    shape = [tf.shape(real)[0], 1, 1, 1]
    alpha = tf.random.stateless_uniform(shape, seed) if seed is not None else tf.random.uniform(shape)
    mixed = real + alpha * (fake - real)
    norms = tf.sqrt(_squared_input_gradients(critic, mixed) + 1e-12)
    return tf.square(norms - 1.0)


def r1_penalty(critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor) -> tf.Tensor:
    """R1 penalty per example (Mescheder et al. 2018): ‖∇D(x)‖₂² at real images, which keeps D smooth on the data
    without spectral norm's bound on every layer's gain (StyleGAN2's regulariser; the caller multiplies by γ/2)."""
    return _squared_input_gradients(critic, tf.cast(real, tf.float32))


def auxiliary_class_loss(class_logits: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
    """ACGAN auxiliary loss (Odena et al. 2017): per-example softmax cross-entropy of D's class head.

    `labels` are integer class ids, shape (N,) or (N, 1); D minimises it on reals and fakes, G on fakes.
    """
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(class_logits, tf.float32))

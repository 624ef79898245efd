"""Pixel losses, per example so a distribution strategy can average over the global batch."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from ..registry import LOSSES


@LOSSES.register("l1")
def l1(target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
    return tf.abs(target - output)


@LOSSES.register("mse")
def mse(target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
    return tf.square(target - output)


@LOSSES.register("charbonnier")
def charbonnier(target: tf.Tensor, output: tf.Tensor) -> tf.Tensor:
    """A smooth L1 (sqrt(d² + ε²)) that is robust to outliers and differentiable at 0."""
    return tf.sqrt(tf.square(target - output) + 1e-6)


def pixel_loss_per_example(loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], target: tf.Tensor, output: tf.Tensor,
                           lesion_mask: tf.Tensor | None = None, lesion_weight: float = 1.0) -> tf.Tensor:
    """Mean elementwise loss per example; lesion-mask pixels weigh `lesion_weight` times more.

    The weighting is calcification-aware training: tiny bright specks are a negligible share of the
    pixels, so without it the loss barely notices when they are blurred away. Weights are normalised
    so the loss scale does not depend on how much of a crop is lesion.
    """
    error = loss(tf.cast(target, tf.float32), tf.cast(output, tf.float32))
    if lesion_mask is None or lesion_weight == 1.0:
        return tf.reduce_mean(error, axis=[1, 2, 3])
    weights = 1.0 + (lesion_weight - 1.0) * tf.cast(lesion_mask, tf.float32)
    return tf.reduce_sum(error * weights, axis=[1, 2, 3]) / tf.reduce_sum(weights, axis=[1, 2, 3])


def feature_matching_loss(real_features: list[tf.Tensor], fake_features: list[tf.Tensor]) -> tf.Tensor:
    """Per-example L1 between discriminator features of real and generated images, averaged over layers."""
    terms = [tf.reduce_mean(tf.abs(tf.cast(r, tf.float32) - tf.cast(f, tf.float32)), axis=list(range(1, len(r.shape))))
             for r, f in zip(real_features, fake_features)]
    return tf.add_n(terms) / float(len(terms))

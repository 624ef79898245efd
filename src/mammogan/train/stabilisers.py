"""Small-data GAN stabilisers: DiffAugment (Zhao et al. 2020) and ADA-style adaptive probability (Karras et al. 2020).

DiffAugment applies the same kind of differentiable augmentation to real and generated images
before every discriminator call (D step and G step), so D cannot memorise the few real images
while G still receives gradients through the augmentation. ADA applies each policy to an example
with probability p, and moves p so that D's overfitting signal r_t = E[sign(D(real))] stays near a target.
All ops are per example and work on (N, H, W, C) batches with any C.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from ..registry import DIFFAUGMENTS
from .randomness import StepRandom


def _uniform(images: tf.Tensor, random: StepRandom) -> tf.Tensor:
    """One uniform [0, 1) value per example, shaped to broadcast over (H, W, C)."""
    return random.uniform([tf.shape(images)[0], 1, 1, 1], dtype=images.dtype)


@DIFFAUGMENTS.register("color")
def color(images: tf.Tensor, random: StepRandom) -> tf.Tensor:
    """Random brightness (±0.5), saturation (×0-2, identity for one channel) and contrast (×0.5-1.5) per example."""
    images = images + (_uniform(images, random) - 0.5)
    mean = tf.reduce_mean(images, axis=3, keepdims=True)
    images = (images - mean) * (_uniform(images, random) * 2.0) + mean
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    return (images - mean) * (_uniform(images, random) + 0.5) + mean


def _sizes_and_fraction(images: tf.Tensor, ratio: float) -> tuple[tf.Tensor, ...]:
    """Batch size, height, width and `ratio` of the height and width rounded to whole pixels."""
    shape = tf.shape(images)
    n, h, w = shape[0], shape[1], shape[2]
    return n, h, w, tf.cast(tf.cast(h, tf.float32) * ratio + 0.5, tf.int32), tf.cast(tf.cast(w, tf.float32) * ratio + 0.5, tf.int32)


def _shift(images: tf.Tensor, random: StepRandom, ratio: float, source: tf.Tensor,
           to_source: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]) -> tf.Tensor:
    """Shift each example by up to `ratio` of its size (integer pixels): output pixel (y, x) reads `source` at
    `to_source` of the shifted row and column (which may fall outside the image) and of the image's height or width."""
    n, h, w, max_y, max_x = _sizes_and_fraction(images, ratio)
    shift_y = random.uniform([n, 1, 1], -max_y, max_y + 1, dtype=tf.int32)
    shift_x = random.uniform([n, 1, 1], -max_x, max_x + 1, dtype=tf.int32)
    rows = to_source(tf.range(h)[None, :, None] + shift_y, h)
    cols = to_source(tf.range(w)[None, None, :] + shift_x, w)
    batch = tf.broadcast_to(tf.range(n)[:, None, None], [n, h, w])
    indices = tf.stack([batch, tf.broadcast_to(rows, [n, h, w]), tf.broadcast_to(cols, [n, h, w])], axis=-1)
    return tf.gather_nd(source, indices)


@DIFFAUGMENTS.register("translation")
def translation(images: tf.Tensor, random: StepRandom, ratio: float = 0.125) -> tf.Tensor:
    """Shift each example by up to `ratio` of its size (integer pixels), filling with zeros (DiffAugment's)."""
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])  # the zero border is what shifted-in pixels read
    return _shift(images, random, ratio, padded, lambda index, size: tf.clip_by_value(index + 1, 0, size + 1))


def _reflect(index: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Mirror indices outside [0, size) back inside (…, 2, 1, 0, 1, 2, …), for shifts smaller than the size."""
    return (size - 1) - tf.abs((size - 1) - tf.abs(index))


@DIFFAUGMENTS.register("translation_reflect")
def translation_reflect(images: tf.Tensor, random: StepRandom, ratio: float = 0.125) -> tf.Tensor:
    """Shift as `translation`, filling by reflection (ADA's integer translation), so an augmented real patch never
    gets a flat band at its edge that a generator could learn to paint. (It did not remove the framed samples of
    the R1 texture recipe, docs/results.md.)"""
    return _shift(images, random, ratio, images, _reflect)


@DIFFAUGMENTS.register("cutout")
def cutout(images: tf.Tensor, random: StepRandom, ratio: float = 0.5) -> tf.Tensor:
    """Zero one square of `ratio` × the image size at a random centre per example."""
    n, h, w, size_y, size_x = _sizes_and_fraction(images, ratio)
    top = random.uniform([n, 1, 1], 0, h, dtype=tf.int32) - size_y // 2
    left = random.uniform([n, 1, 1], 0, w, dtype=tf.int32) - size_x // 2
    rows, cols = tf.range(h)[None, :, None], tf.range(w)[None, None, :]
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return images * tf.cast(~inside, images.dtype)[..., None]


def diff_augment(images: tf.Tensor, policies: list[str], random: StepRandom, probability: tf.Tensor | float = 1.0) -> tf.Tensor:
    """Apply each policy in order; with ADA, each policy hits an example with `probability` (per example)."""
    for name in policies:
        augmented = DIFFAUGMENTS.get(name, "[train] diffaugment")(images, random)
        if isinstance(probability, float) and probability >= 1.0:
            images = augmented
        else:
            chosen = _uniform(images, random) < tf.cast(probability, images.dtype)
            images = tf.where(chosen, augmented, images)
    return images


class AdaptiveAugment:
    """ADA's controller: accumulates sign(D(real)) in the D steps and moves p every `interval` D steps.

    The accumulators are sync-on-read SUM variables: each replica adds its own examples in replica
    context, and `update` (cross-replica context, after each train step) reads the totals over replicas.
    p moves by sign(r_t - target) × images / speed_images, so it can go from 0 to 1 in `speed_images` images.
    """

    def __init__(self, target: float, interval: int, speed_images: float, batch_size: int) -> None:
        self.target = target
        self.speed_images = float(speed_images)
        self.images_per_update = float(interval * batch_size)
        self.p = tf.Variable(0.0, trainable=False, name="ada_p")
        self.r_t = tf.Variable(0.0, trainable=False, name="ada_r_t")
        sum_on_read = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                           aggregation=tf.VariableAggregation.SUM)
        self.sign_sum = tf.Variable(0.0, name="ada_sign_sum", **sum_on_read)
        self.count = tf.Variable(0.0, name="ada_count", **sum_on_read)

    def observe(self, real_logits: tf.Tensor) -> None:
        """Replica context: add this replica's per-example mean sign of D's real logits."""
        logits = tf.reshape(tf.cast(real_logits, tf.float32), [tf.shape(real_logits)[0], -1])
        self.sign_sum.assign_add(tf.reduce_sum(tf.sign(tf.reduce_mean(logits, axis=1))))
        self.count.assign_add(tf.cast(tf.shape(logits)[0], tf.float32))

    def update(self) -> None:
        """Cross-replica context: once enough real images were seen, step p and reset the accumulators."""
        count, total = self.count.read_value(), self.sign_sum.read_value()
        ready = count >= self.images_per_update
        r_t = total / tf.maximum(count, 1.0)
        stepped = tf.clip_by_value(self.p + tf.sign(r_t - self.target) * count / self.speed_images, 0.0, 1.0)
        self.p.assign(tf.where(ready, stepped, self.p))
        self.r_t.assign(tf.where(ready, r_t, self.r_t))
        self.sign_sum.assign(tf.where(ready, 0.0, total))
        self.count.assign(tf.where(ready, 0.0, count))


def with_instance_noise(images: tf.Tensor, step: tf.Tensor, initial_std: float, total_steps: float,
                        random: StepRandom) -> tf.Tensor:
    """Gaussian instance noise for D inputs, annealed linearly to 0 over training (keeps D from winning early)."""
    if initial_std <= 0:
        return images
    std = initial_std * tf.maximum(0.0, 1.0 - tf.cast(step, tf.float32) / total_steps)
    return images + tf.cast(random.normal(tf.shape(images), stddev=std), images.dtype)

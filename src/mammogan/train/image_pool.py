"""The history of generated images a CycleGAN discriminator trains on (Shrivastava et al. 2017; Zhu et al. 2017).

Showing D older fakes beside the newest keeps it from chasing the generator's latest change, which
damps oscillation. The pool lives in variables (saved in checkpoints, so a resumed run continues with
the same history) and draws its choices from the step's stateless random numbers.
"""

from __future__ import annotations

import tensorflow as tf

from .randomness import StepRandom


class ImagePool:
    """Up to `size` generated images: until full, every query image is stored and returned; then each is, with
    probability 1/2, swapped for a random stored one (which is returned while the new one takes its slot), else
    returned as it is. `size` 0: the query comes back unchanged.

    Under a distribution strategy every replica keeps its own pool (on-read variables), as each replica
    has its own D inputs; the checkpoint keeps the first replica's.
    """

    def __init__(self, size: int, shape: tuple[int, ...], name: str) -> None:
        self.size = size
        if size == 0:
            return
        local = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.images = tf.Variable(tf.zeros((size, *shape), tf.float32), name=f"{name}_images", **local)
        self.count = tf.Variable(0, dtype=tf.int32, name=f"{name}_count", **local)

    def variables(self) -> dict[str, tf.Variable]:
        """What a checkpoint saves ({} for an empty pool)."""
        return {} if self.size == 0 else {"images": self.images, "count": self.count}

    def query(self, images: tf.Tensor, random: StepRandom) -> tf.Tensor:
        """The images D sees instead of `images` (a batch of fakes), updating the pool one image at a time."""
        if self.size == 0:
            return images
        images = tf.cast(images, tf.float32)
        batch = tf.shape(images)[0]
        coins = random.uniform([batch])
        slots = random.uniform([batch], 0, self.size, dtype=tf.int32)
        returned = tf.TensorArray(tf.float32, size=batch, element_shape=images.shape[1:])
        for index in tf.range(batch):
            image = images[index]
            count = self.count.read_value()
            if count < self.size:
                self._store(count, image)
                self.count.assign(count + 1)
                returned = returned.write(index, image)
            elif coins[index] < 0.5:
                slot = slots[index]
                returned = returned.write(index, self.images[slot])
                self._store(slot, image)
            else:
                returned = returned.write(index, image)
        return returned.stack()

    def _store(self, slot: tf.Tensor, image: tf.Tensor) -> None:
        """Put `image` in `slot` (a whole-tensor assign: on-read variables have no scatter update)."""
        self.images.assign(tf.tensor_scatter_nd_update(self.images.read_value(), [[slot]], image[None]))

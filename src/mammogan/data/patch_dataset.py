"""Image patches for synthetic-image GANs: a folder of PNG patches as an endless, resumable tf.data stream."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from ..errors import DataError
from .images import list_images, read_image


def load_patches(folder: Path, size: int) -> np.ndarray:
    """All patches of `folder/images` (or `folder` itself) as float32 (N, size, size) in [0, 1]."""
    source = folder / "images" if (folder / "images").is_dir() else folder
    paths = list_images(source)
    if not paths:
        raise DataError(f"{source}: no patch images found.")
    patches = []
    for path in paths:
        image = read_image(path)
        values = image.astype(np.float32) / np.iinfo(image.dtype).max
        if values.shape != (size, size):
            values = cv2.resize(values, (size, size), interpolation=cv2.INTER_AREA if values.shape[0] > size else cv2.INTER_CUBIC)
        patches.append(values)
    return np.clip(np.stack(patches), 0.0, 1.0)


class PatchSampler:
    """Patch `i` of the stream depends only on (seed, i), so resumed runs see the same data."""

    def __init__(self, patches: np.ndarray, flips: bool, seed: int) -> None:
        self.patches = patches
        self.flips = flips
        self.seed = seed

    def sample(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, int(index)])
        patch = self.patches[int(rng.integers(len(self.patches)))]
        if self.flips:
            patch = np.rot90(patch, int(rng.integers(4)))
            if rng.integers(2):
                patch = patch[:, ::-1]
        return np.ascontiguousarray(patch)[..., None]

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        size = self.patches.shape[1]

        def load(index):
            patch = tf.numpy_function(self.sample, [index], tf.float32, stateful=False)
            return tf.ensure_shape(patch, (size, size, 1))

        return (tf.data.Dataset.counter(start_index)
                .map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .batch(batch_size, drop_remainder=True)
                .prefetch(tf.data.AUTOTUNE))

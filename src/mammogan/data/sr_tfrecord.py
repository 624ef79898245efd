"""TFRecord shards of an SR training split, for sets that do not fit in memory (`[dataset] storage = "tfrecord"`).

Each source image becomes one tf.train.Example holding its HR, LR and mask as PNG bytes at the stored
bit depth. Shards are written once (one image decoded at a time, each shard renamed into place when
complete, `index.json` last) and reused while a fingerprint of the sources is unchanged.

Training streams them: records are shuffled (seeded), numbered, decoded in parallel, and each image
yields `crops_per_image` aligned crops drawn with stateless random ops seeded by (seed, record number),
so crop `i` depends only on (seed, i) and a resumed run skips whole records before decoding anything.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np
import tensorflow as tf

from ..errors import DataError
from ..core.io import atomic_path, atomic_write_text
from ..core.logs import get_logger
from ..core.progress import progress
from .sr_dataset import SourcePair, check_crop_fits, crop_sides, degradation_for, full_scale_for, read_pairs, source_images

log = get_logger("data")
INDEX = "index.json"
SHARD_BYTES = 256 << 20
FORMAT_VERSION = 1
FEATURES = {
    "name": tf.io.FixedLenFeature([], tf.string),
    "hr": tf.io.FixedLenFeature([], tf.string),
    "lr": tf.io.FixedLenFeature([], tf.string),
    "mask": tf.io.FixedLenFeature([], tf.string),  # b"" when the image has no mask
    "shape": tf.io.FixedLenFeature([2], tf.int64),
    "scale": tf.io.FixedLenFeature([], tf.int64),
}


@dataclass
class ShardSet:
    """A complete, up-to-date set of shards (what `ensure_shards` returns)."""

    files: list[Path]
    dtype: np.dtype
    scale: int
    images: int


def _stat(path: Path) -> list[Any] | None:
    if not path.is_file():
        return None
    info = path.stat()
    return [info.st_size, info.st_mtime_ns]


def source_description(folder: Path, scale: int, lr_subdir: str) -> dict[str, Any]:
    """What the shards were made from: a fingerprint of every source file (name, size, mtime), the scale and
    the LR source. Any change means the shards are stale. The data range is applied when reading, so it is not part of it."""
    files = [[path.name, _stat(path), _stat(folder / lr_subdir / path.name) if lr_subdir else None,
              _stat(folder / "masks" / path.name)] for path in source_images(folder)]
    lr_source = {"lr_subdir": lr_subdir} if lr_subdir else {"degradation": degradation_for(folder, scale).as_dict()}
    fingerprint = hashlib.sha256(json.dumps(files).encode()).hexdigest()
    return {"version": FORMAT_VERSION, "folder": str(folder), "scale": scale, "lr_source": lr_source,
            "images": len(files), "fingerprint": fingerprint}


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])  # uint16 stays 16-bit
    if not ok:
        raise DataError(f"PNG encoding of a {image.dtype} {image.shape} image failed.")
    return encoded.tobytes()


def _example(pair: SourcePair, scale: int) -> bytes:
    def data(value: bytes) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def ints(*values: int) -> tf.train.Feature:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    mask = _png(((pair.mask > 0) * 255).astype(np.uint8)) if pair.mask is not None else b""
    features = {"name": data(pair.path.name.encode()), "hr": data(_png(pair.hr)), "lr": data(_png(pair.lr)),
                "mask": data(mask), "shape": ints(*pair.hr.shape), "scale": ints(scale)}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _write_shards(records: Iterable[bytes], folder: Path, shard_bytes: int) -> list[dict[str, Any]]:
    """Stream records into shards of about `shard_bytes` (at least one record each), each renamed into place when closed."""
    shards: list[dict[str, Any]] = []
    stream = iter(records)
    record = next(stream, None)
    while record is not None:
        name = f"shard-{len(shards):05d}.tfrecord"
        count = size = 0
        with atomic_path(folder / name) as temp, tf.io.TFRecordWriter(str(temp)) as writer:
            while record is not None and (count == 0 or size + len(record) <= shard_bytes):
                writer.write(record)
                count, size = count + 1, size + len(record)
                record = next(stream, None)
        shards.append({"file": name, "images": count, "bytes": size})
    return shards


def write_shards(folder: Path, out_dir: Path, scale: int, lr_subdir: str, min_hr_size: int = 0,
                 shard_bytes: int = SHARD_BYTES, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the split's pairs (read and validated exactly as `load_split` does) as shards plus `index.json`.

    `source`: the split's `source_description` when the caller already made it (it stats every file)."""
    source = source or source_description(folder, scale, lr_subdir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX).unlink(missing_ok=True)  # no index = no valid set, until the new one is complete
    index: dict[str, Any] = {"source": source, "dtype": None, "images": [], "shards": []}

    def records() -> Iterator[bytes]:
        pairs = read_pairs(folder, scale, lr_subdir, min_hr_size)
        for pair in progress(pairs, total=source["images"], desc="TFRecord shards"):
            index["dtype"] = pair.hr.dtype.name  # read_pairs checks that the split has one bit depth
            index["images"].append({"file": pair.path.name, "shape": list(pair.hr.shape), "mask": pair.mask is not None})
            yield _example(pair, scale)

    index["shards"] = _write_shards(records(), out_dir, shard_bytes)
    keep = {shard["file"] for shard in index["shards"]}
    for old in out_dir.glob("shard-*.tfrecord"):
        if old.name not in keep:
            old.unlink()
    atomic_write_text(out_dir / INDEX, json.dumps(index, indent=1))
    return index


def _read_index(out_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((out_dir / INDEX).read_text())
    except (OSError, ValueError):
        return None


def ensure_shards(folder: Path, out_dir: Path, scale: int, lr_subdir: str, min_hr_size: int = 0,
                  shard_bytes: int = SHARD_BYTES) -> ShardSet:
    """The shards of `folder` in `out_dir`, (re)written first when missing or made from other sources."""
    index = _read_index(out_dir)
    current = source_description(folder, scale, lr_subdir)
    same_source = index is not None and index.get("source") == current
    if same_source and all((out_dir / s["file"]).is_file() for s in index["shards"]):
        log.info("TFRecord shards: reusing %d images in %d shard(s) in %s.", len(index["images"]), len(index["shards"]), out_dir)
    else:
        reason = "none yet" if index is None else "shard files missing" if same_source else "the sources changed"
        log.info("TFRecord shards: writing %d images of %s to %s (%s; done once, reused while the sources are unchanged)...",
                 current["images"], folder, out_dir, reason)
        index = write_shards(folder, out_dir, scale, lr_subdir, min_hr_size, shard_bytes, source=current)
        log.info("TFRecord shards: %d shard(s), %.1f MB.", len(index["shards"]), sum(s["bytes"] for s in index["shards"]) / 1e6)
    for image in index["images"]:
        check_crop_fits(folder / "images" / image["file"], image["shape"][0], image["shape"][1], min_hr_size)
    return ShardSet([out_dir / s["file"] for s in index["shards"]], np.dtype(index["dtype"]), scale, len(index["images"]))


def _pick(u: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
    """Uniform integers in [0, n) from uniform floats in [0, 1)."""
    n = tf.cast(n, tf.int64)
    return tf.minimum(tf.cast(tf.floor(u * tf.cast(n, tf.float64)), tf.int64), n - 1)


class ShardSampler:
    """Streams aligned LR/HR/mask crops from shards; same interface and crop rules as CropSampler."""

    def __init__(self, shards: ShardSet, patch_size: int, lesion_fraction: float, flips: bool, seed: int,
                 crops_per_image: int, shuffle_buffer: int, data_range: float) -> None:
        self.shards = shards
        self.hr_patch, self.lr_patch = crop_sides(patch_size, shards.scale)
        self.lesion_fraction = lesion_fraction
        self.flips = flips
        self.seed = seed
        self.crops_per_image = crops_per_image
        self.shuffle_buffer = shuffle_buffer
        self.full_scale = full_scale_for(data_range, shards.dtype)

    def _records(self) -> tf.data.Dataset:
        """Endless (record number, serialized example): shard order reshuffled every pass, records interleaved and shuffled."""
        files = [str(path) for path in self.shards.files]
        return (
            tf.data.Dataset.from_tensor_slices(files)
            .shuffle(len(files), seed=self.seed, reshuffle_each_iteration=True)
            .repeat()
            .interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4), block_length=1)
            .shuffle(self.shuffle_buffer, seed=self.seed + 1, reshuffle_each_iteration=True)
            .enumerate()
        )

    def crops(self, index: tf.Tensor, record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """`crops_per_image` (lr, hr, mask) crops of one record, a pure function of (seed, index, record)."""
        s, lp, count = self.shards.scale, self.lr_patch, self.crops_per_image
        dtype = tf.as_dtype(self.shards.dtype)
        example = tf.io.parse_single_example(record, FEATURES)
        hr = tf.io.decode_png(example["hr"], channels=1, dtype=dtype)
        lr = tf.io.decode_png(example["lr"], channels=1, dtype=dtype)
        mask = tf.cond(tf.strings.length(example["mask"]) > 0,
                       lambda: tf.io.decode_png(example["mask"], channels=1) > 0,
                       lambda: tf.zeros(tf.shape(hr), tf.bool))
        u = tf.random.stateless_uniform([count, 8], seed=tf.stack([tf.constant(self.seed, tf.int64), index]), dtype=tf.float64)
        max_y, max_x = tf.cast(tf.shape(lr)[0] - lp, tf.int64), tf.cast(tf.shape(lr)[1] - lp, tf.int64)
        points = tf.where(mask[..., 0])  # lesion pixels (y, x) in HR coordinates
        found = tf.shape(points, out_type=tf.int64)[0]
        points = tf.concat([points, tf.zeros([1, 2], tf.int64)], axis=0)  # keeps the gather valid without lesions
        centre = tf.gather(points, _pick(u[:, 0], tf.maximum(found, 1))) // s
        jitter = tf.stack([_pick(u[:, 1], 2 * (lp // 4) + 1), _pick(u[:, 2], 2 * (lp // 4) + 1)], axis=1) - lp // 4
        lesion_yx = tf.clip_by_value(centre - lp // 2 + jitter, 0, tf.stack([max_y, max_x]))
        uniform_yx = tf.stack([_pick(u[:, 3], max_y + 1), _pick(u[:, 4], max_x + 1)], axis=1)
        on_lesion = (u[:, 5] < self.lesion_fraction) & (found > 0)
        yx = tf.where(on_lesion[:, None], lesion_yx, uniform_yx)
        turns, flip = _pick(u[:, 6], 4), u[:, 7] < 0.5
        outputs: list[list[tf.Tensor]] = [[], [], []]
        for i in range(count):
            y, x = yx[i, 0], yx[i, 1]
            crops = (tf.cast(lr[y : y + lp, x : x + lp], tf.float32) / self.full_scale,
                     tf.cast(hr[y * s : (y + lp) * s, x * s : (x + lp) * s], tf.float32) / self.full_scale,
                     tf.cast(mask[y * s : (y + lp) * s, x * s : (x + lp) * s], tf.float32))
            for output, crop in zip(outputs, crops):
                if self.flips:  # as CropSampler: rot90 `turns` times, then a left-right flip
                    crop = tf.image.rot90(crop, tf.cast(turns[i], tf.int32))
                    crop = tf.where(flip[i], tf.reverse(crop, axis=[1]), crop)
                output.append(crop)
        lp_shape, hp_shape = (count, lp, lp, 1), (count, self.hr_patch, self.hr_patch, 1)
        lr_out, hr_out, mask_out = (tf.stack(o) for o in outputs)
        return tf.ensure_shape(lr_out, lp_shape), tf.ensure_shape(hr_out, hp_shape), tf.ensure_shape(mask_out, hp_shape)

    def dataset(self, batch_size: int, start_index: int) -> tf.data.Dataset:
        """An endless batched dataset of (lr, hr, mask) starting at crop number `start_index`.

        Crop i is crop i % crops_per_image of record i // crops_per_image: whole records before the start
        are skipped undecoded, then the first record's leading crops.
        """
        return (
            self._records()
            .skip(start_index // self.crops_per_image)
            .map(self.crops, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .unbatch()
            .skip(start_index % self.crops_per_image)
            .batch(batch_size, drop_remainder=True)
            .prefetch(tf.data.AUTOTUNE)
        )

"""TFRecord shards of an SR training split, for sets that do not fit in memory (`[dataset] storage = "tfrecord"`).

Each source image becomes one tf.train.Example holding its file name and its HR, LR and mask as PNG
bytes at the stored bit depth. Shards are written once (one image decoded at a time, each shard renamed
into place when complete, `index.json` last) and reused while a fingerprint of the sources is unchanged.
samplers.ShardSampler streams crops from them.
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
from .sr_dataset import SourcePair, check_crop_fits, degradation_for, mask_subdirs, read_pairs, source_images

log = get_logger("data")
INDEX = "index.json"
SHARD_BYTES = 256 << 20
FORMAT_VERSION = 1
FEATURES = {
    "name": tf.io.FixedLenFeature([], tf.string),  # the source file, so a record can be traced to its image
    "hr": tf.io.FixedLenFeature([], tf.string),
    "lr": tf.io.FixedLenFeature([], tf.string),
    "mask": tf.io.FixedLenFeature([], tf.string),  # b"" when the image has no mask
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


def source_description(folder: Path, scale: int, lr_subdir: str, mask_classes: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the shards were made from: a fingerprint of every source file (name, size, mtime), the scale, the
    LR source and the mask classes (only when set, so shards of the any-lesion mask keep their fingerprint).
    Any change means the shards are stale. The data range is applied when reading, so it is not part of it."""
    files = [[path.name, _stat(path), _stat(folder / lr_subdir / path.name) if lr_subdir else None,
              *(_stat(folder / subdir / path.name) for subdir in mask_subdirs(mask_classes))] for path in source_images(folder)]
    lr_source = {"lr_subdir": lr_subdir} if lr_subdir else {"degradation": degradation_for(folder, scale).as_dict()}
    fingerprint = hashlib.sha256(json.dumps(files).encode()).hexdigest()
    masks = {"mask_classes": list(mask_classes)} if mask_classes else {}
    return {"version": FORMAT_VERSION, "folder": str(folder), "scale": scale, "lr_source": lr_source, **masks,
            "images": len(files), "fingerprint": fingerprint}


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])  # uint16 stays 16-bit
    if not ok:
        raise DataError(f"PNG encoding of a {image.dtype} {image.shape} image failed.")
    return encoded.tobytes()


def _example(pair: SourcePair) -> bytes:
    """The record of one image: the FEATURES and nothing else (the PNGs carry the shape, the index the scale)."""
    mask = _png(((pair.mask > 0) * 255).astype(np.uint8)) if pair.mask is not None else b""
    values = {"name": pair.path.name.encode(), "hr": _png(pair.hr), "lr": _png(pair.lr), "mask": mask}
    features = {key: tf.train.Feature(bytes_list=tf.train.BytesList(value=[value])) for key, value in values.items()}
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
        shards.append({"file": name, "bytes": size})
    return shards


def write_shards(folder: Path, out_dir: Path, scale: int, lr_subdir: str, min_hr_size: int = 0,
                 shard_bytes: int = SHARD_BYTES, source: dict[str, Any] | None = None,
                 mask_classes: tuple[str, ...] = ()) -> dict[str, Any]:
    """Write the split's pairs (read and validated exactly as `load_split` does) as shards plus `index.json`.

    `source`: the split's `source_description` when the caller already made it (it stats every file);
    `mask_classes`: see read_pair."""
    source = source or source_description(folder, scale, lr_subdir, mask_classes)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INDEX).unlink(missing_ok=True)  # no index = no valid set, until the new one is complete
    index: dict[str, Any] = {"source": source, "dtype": None, "images": [], "shards": []}

    def records() -> Iterator[bytes]:
        pairs = read_pairs(folder, scale, lr_subdir, min_hr_size, mask_classes=mask_classes)
        for pair in progress(pairs, total=source["images"], desc="TFRecord shards"):
            index["dtype"] = pair.hr.dtype.name  # read_pairs checks that the split has one bit depth
            index["images"].append({"file": pair.path.name, "shape": list(pair.hr.shape)})  # for check_crop_fits on reuse
            yield _example(pair)

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


def _extent(index: dict[str, Any]) -> str:
    """How many shards an index lists and their size, for the log."""
    return f"{len(index['shards'])} shard(s), {sum(s['bytes'] for s in index['shards']) / 1e6:.1f} MB"


def ensure_shards(folder: Path, out_dir: Path, scale: int, lr_subdir: str, min_hr_size: int = 0,
                  shard_bytes: int = SHARD_BYTES, mask_classes: tuple[str, ...] = ()) -> ShardSet:
    """The shards of `folder` in `out_dir`, (re)written first when missing or made from other sources (`mask_classes`: see read_pair)."""
    index = _read_index(out_dir)
    current = source_description(folder, scale, lr_subdir, mask_classes)
    same_source = index is not None and index.get("source") == current
    if same_source and all((out_dir / s["file"]).is_file() for s in index["shards"]):
        log.info("TFRecord shards: reusing %d images in %s in %s.", len(index["images"]), _extent(index), out_dir)
    else:
        reason = "none yet" if index is None else "shard files missing" if same_source else "the sources changed"
        log.info("TFRecord shards: writing %d images of %s to %s (%s; done once, reused while the sources are unchanged)...",
                 current["images"], folder, out_dir, reason)
        index = write_shards(folder, out_dir, scale, lr_subdir, min_hr_size, shard_bytes, source=current, mask_classes=mask_classes)
        log.info("TFRecord shards: %s.", _extent(index))
    for image in index["images"]:
        check_crop_fits(folder / "images" / image["file"], image["shape"][0], image["shape"][1], min_hr_size)
    return ShardSet([out_dir / s["file"] for s in index["shards"]], np.dtype(index["dtype"]), scale, len(index["images"]))

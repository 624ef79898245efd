"""Tiled super-resolution with weighted blending: any image size in bounded memory, without seams.

Tiles overlap by `overlap` LR pixels. Each tile's blending weight is 0 on its outer quarter-overlap
(where zero padding disturbs a convolutional network's output), then ramps linearly to 1, so
neighbouring weights sum to 1 and every output pixel comes from tile interiors. With an overlap
larger than twice the generator's receptive-field radius the result equals whole-image inference.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def _ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D weights of one tile: zero margin then linear ramp on sides that touch another tile."""
    weights = np.ones(length, dtype=np.float64)
    if overlap <= 0:
        return weights
    margin = overlap // 4
    ramp_length = max(overlap - 2 * margin, 1)
    ramp = np.clip((np.arange(overlap) - margin + 0.5) / ramp_length, 0.0, 1.0)
    if not at_start:
        weights[:overlap] = np.minimum(weights[:overlap], ramp)
    if not at_end:
        weights[-overlap:] = np.minimum(weights[-overlap:], ramp[::-1])
    return weights


def _blend_weights(starts: list[int], tile: int, overlap: int, size: int, scale: int) -> dict[int, np.ndarray]:
    """Each tile's output-side ramp along one axis, divided by the sum of all ramps there (a partition of unity)."""
    ramps = {start: _ramp(tile * scale, overlap * scale, start == 0, start + tile == size) for start in starts}
    total = np.zeros(size * scale)
    for start, ramp in ramps.items():
        total[start * scale : (start + tile) * scale] += ramp
    return {start: (ramp / np.maximum(total[start * scale : (start + tile) * scale], 1e-12)).astype(np.float32)
            for start, ramp in ramps.items()}


def tiled_super_resolve(run: Callable[[np.ndarray], np.ndarray], lr: np.ndarray, scale: int, tile: int, overlap: int,
                        batch: int) -> np.ndarray:
    """Super-resolve a 2-D float image; `run` maps a (B, h, w, 1) float32 batch to (B, h·s, w·s, 1)."""
    height, width = lr.shape
    tile_h, tile_w = min(tile, height), min(tile, width)
    overlap_h, overlap_w = min(overlap, tile_h // 2), min(overlap, tile_w // 2)
    ys, xs = _starts(height, tile_h, overlap_h), _starts(width, tile_w, overlap_w)
    # The blend weights are outer products of row and column ramps on a grid of tiles, so normalising each
    # 1-D ramp by the 1-D sum normalises the 2-D weights; the float32 output is the only full-size array.
    rows, cols = _blend_weights(ys, tile_h, overlap_h, height, scale), _blend_weights(xs, tile_w, overlap_w, width, scale)
    output = np.zeros((height * scale, width * scale), dtype=np.float32)
    boxes = [(y, x) for y in ys for x in xs]
    for first in range(0, len(boxes), batch):
        chunk = boxes[first : first + batch]
        inputs = np.stack([lr[y : y + tile_h, x : x + tile_w] for y, x in chunk])[..., None].astype(np.float32)
        results = np.asarray(run(inputs), dtype=np.float32)[..., 0]
        for (y, x), result in zip(chunk, results):
            output[y * scale : (y + tile_h) * scale, x * scale : (x + tile_w) * scale] += result * np.outer(rows[y], cols[x])
    return output

"""Epoch-change inference tiles: one PNG per epoch for a fixed set of inputs, so epochs can be compared.

SR tiles show, per fixed validation region (centred on a lesion when masks exist), LR (nearest) |
bicubic | SR | HR with a magnified inset of the region's centre and each panel's PSNR. GAN tiles show
the same fixed latent batch every epoch above a strip of real patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..core.io import atomic_write_bytes
from ..metrics.numpy_metrics import bicubic_upscale, psnr_np

PANEL = 256  # displayed panel side in pixels
HEADER = 34
LABEL = 22
INSET_COLOUR = (0, 215, 255)  # BGR amber
BETTER, WORSE = (120, 255, 120), (110, 110, 255)  # BGR green / red: the SR crop's PSNR above / below bicubic's
TEXT = (235, 235, 235)
BACKGROUND = (32, 32, 32)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass(frozen=True)
class Region:
    image: int
    y: int  # HR pixels, multiple of the scale
    x: int
    size: int


def tile_regions(split, count: int, size: int = 128) -> list[Region]:
    """Fixed HR crops: centred on the largest lesion when a mask exists, else on the densest tissue."""
    regions = []
    for index in range(min(count, len(split.hr))):
        hr, mask = split.hr[index], split.masks[index]
        side = min(size, hr.shape[0], hr.shape[1])
        side -= side % split.scale
        if mask is not None and mask.any():
            ys, xs = np.nonzero(mask)
            cy, cx = int(np.median(ys)), int(np.median(xs))
        else:
            smooth = cv2.blur(hr, (31, 31))
            cy, cx = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
        y = int(np.clip(cy - side // 2, 0, hr.shape[0] - side))
        x = int(np.clip(cx - side // 2, 0, hr.shape[1] - side))
        regions.append(Region(index, y - y % split.scale, x - x % split.scale, side))
    return regions


def _to_bgr(values: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(np.round(np.clip(values, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def _text(canvas: np.ndarray, text: str, x: int, y: int, scale: float = 0.5, colour=TEXT) -> None:
        cv2.putText(canvas, text, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)


def _panel(values: np.ndarray, inset: bool) -> np.ndarray:
    """Upscale a crop to the panel size (nearest, so pixels stay honest) and add the magnified centre."""
    panel = _to_bgr(cv2.resize(values, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST))
    if inset:
        side = values.shape[0] // 4
        c0 = values.shape[0] // 2 - side // 2
        zoom = cv2.resize(values[c0 : c0 + side, c0 : c0 + side], (PANEL // 2 - 4, PANEL // 2 - 4), interpolation=cv2.INTER_NEAREST)
        scale = PANEL / values.shape[0]
        p0, p1 = int(c0 * scale), int((c0 + side) * scale)
        cv2.rectangle(panel, (p0, p0), (p1, p1), INSET_COLOUR, 1)
        y0 = x0 = PANEL - PANEL // 2
        panel[y0 + 2 : PANEL - 2, x0 + 2 : PANEL - 2] = _to_bgr(zoom)
        cv2.rectangle(panel, (x0 + 1, y0 + 1), (PANEL - 2, PANEL - 2), INSET_COLOUR, 1)
    return panel


def _save(path: Path, canvas: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", canvas)
    if ok:
        atomic_write_bytes(path, encoded.tobytes())


def _psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR for a panel label, capped at 99 dB so identical crops still print a number."""
    return min(psnr_np(reference, test, 1.0), 99.0)


def crop_with_context(split, region: Region, super_resolve: Callable[[np.ndarray], np.ndarray], margin: int = 8) -> np.ndarray:
    """SR of one region, run on the region plus `margin` LR pixels of context so its edges are not image edges."""
    scale = split.scale
    lr_full = split.lr[region.image]
    ly, lx, ls = region.y // scale, region.x // scale, region.size // scale
    y0, x0 = max(ly - margin, 0), max(lx - margin, 0)
    y1, x1 = min(ly + ls + margin, lr_full.shape[0]), min(lx + ls + margin, lr_full.shape[1])
    oy, ox = (ly - y0) * scale, (lx - x0) * scale
    return super_resolve(lr_full[y0:y1, x0:x1])[oy : oy + region.size, ox : ox + region.size]


def sr_epoch_title(epoch: int, metrics: dict[str, float]) -> str:
    return (f"epoch {epoch}   val PSNR {metrics['val/psnr']:.2f} dB   gain over bicubic {metrics['val/psnr_gain']:+.2f} dB   "
            f"SSIM {metrics['val/ssim']:.4f}")


def sr_tile(path: Path, title: str, split, regions: list[Region], sr_crop: Callable[[Region], np.ndarray]) -> None:
    """`sr_crop(region)` returns the model's HR-size output for a region."""

    scale = split.scale
    columns = ["LR (nearest)", "bicubic", "SR", "HR"]
    width = len(columns) * PANEL + (len(columns) + 1) * 4
    rows = []
    for region in regions:
        lr_full, hr_full = split.lr[region.image], split.hr[region.image]
        ly, lx, ls = region.y // scale, region.x // scale, region.size // scale
        sr = sr_crop(region)
        bicubic = crop_with_context(split, region, lambda lr: np.clip(bicubic_upscale(lr, scale), 0, 1))
        hr = hr_full[region.y : region.y + region.size, region.x : region.x + region.size]
        lr = lr_full[ly : ly + ls, lx : lx + ls]
        panels = [_panel(lr, True), _panel(bicubic, True), _panel(sr, True), _panel(hr, True)]
        row = np.full((PANEL + LABEL, width, 3), BACKGROUND, np.uint8)
        for i, panel in enumerate(panels):
            row[LABEL : LABEL + PANEL, 4 + i * (PANEL + 4) : 4 + i * (PANEL + 4) + PANEL] = panel
        _text(row, f"{split.names[region.image]}", 8, 16, 0.45)
        bicubic_psnr, sr_psnr = _psnr(hr, bicubic), _psnr(hr, sr)
        _text(row, f"{bicubic_psnr:.2f} dB", 4 + (PANEL + 4) + 8, 16, 0.45)
        _text(row, f"{sr_psnr:.2f} dB", 4 + 2 * (PANEL + 4) + 8, 16, 0.45, BETTER if sr_psnr > bicubic_psnr else WORSE)
        rows.append(row)
    header = np.full((HEADER + LABEL, width, 3), BACKGROUND, np.uint8)
    _text(header, title, 8, 22, 0.6)
    for i, name in enumerate(columns):
        _text(header, name, 4 + i * (PANEL + 4) + 8, HEADER + 16, 0.5, INSET_COLOUR)
    _save(path, np.vstack([header, *rows]))


def _grid(images: np.ndarray, columns: int, cell: int) -> np.ndarray:
    count = len(images)
    lines = (count + columns - 1) // columns
    grid = np.full((lines * (cell + 4) + 4, columns * (cell + 4) + 4, 3), BACKGROUND, np.uint8)
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        resized = cv2.resize(image, (cell, cell), interpolation=cv2.INTER_NEAREST)
        grid[4 + r * (cell + 4) : 4 + r * (cell + 4) + cell, 4 + c * (cell + 4) : 4 + c * (cell + 4) + cell] = _to_bgr(resized)
    return grid


def gan_tile(path: Path, title: str, samples: np.ndarray, real: np.ndarray, metrics: dict[str, float],
             row_labels: list[str] | None = None) -> None:
    """Fixed-latent samples (same latents every epoch) above a strip of real patches.

    `row_labels` (conditional GANs) names each row of 8 samples, e.g. the class it was generated for.
    """
    columns = 8
    cell = 128 if samples.shape[1] <= 128 else samples.shape[1]
    fake_grid = _grid(samples, columns, cell)
    for row, name in enumerate(row_labels or []):
        _text(fake_grid, name, 8, 4 + row * (cell + 4) + 16, 0.5, INSET_COLOUR)
    real_grid = _grid(real[:columns], columns, cell)
    width = fake_grid.shape[1]
    header = np.full((HEADER, width, 3), BACKGROUND, np.uint8)
    details = "   ".join(f"{k.split('/')[-1]} {v:.4f}" for k, v in metrics.items())
    _text(header, f"{title}   {details}", 8, 22, 0.55)
    label = np.full((LABEL + 4, width, 3), BACKGROUND, np.uint8)
    _text(label, "real patches", 8, 18, 0.5, INSET_COLOUR)
    _save(path, np.vstack([header, fake_grid, label, real_grid]))


def translation_tile(path: Path, title: str, rows: list[tuple[str, np.ndarray]], metrics: dict[str, float]) -> None:
    """Labelled rows of equally many crops (CycleGAN: A, A → B, A → B → A, B, ...) in their true grey levels,
    so a density change shows as a change of brightness; a gap separates each source's group of three."""
    columns = max(len(images) for _, images in rows)
    cell = 128 if rows[0][1].shape[1] <= 128 else rows[0][1].shape[1]
    parts = []
    header_width = columns * (cell + 4) + 4
    header = np.full((HEADER, header_width, 3), BACKGROUND, np.uint8)
    _text(header, f"{title}   " + "   ".join(f"{k.split('/')[-1]} {v:.4f}" for k, v in metrics.items()), 8, 22, 0.5)
    parts.append(header)
    for index, (name, images) in enumerate(rows):
        if index and index % 3 == 0:
            parts.append(np.full((LABEL, header_width, 3), BACKGROUND, np.uint8))
        grid = _grid(images, columns, cell)
        _text(grid, name, 8, 20, 0.5, INSET_COLOUR)
        parts.append(grid)
    _save(path, np.vstack(parts))


SINGAN_CELL = 128  # displayed side of every scale's image, so coarse scales are seen pixel by pixel


def _singan_row(images: list[np.ndarray], cell: int = SINGAN_CELL) -> np.ndarray:
    """Images of one scale side by side at `cell` px (nearest), keeping each one's aspect ratio, all shown in the
    grey window of the first (the real image's range), so a low-contrast patch's texture is visible."""
    low, high = float(images[0].min()), max(float(images[0].max()), float(images[0].min()) + 1e-6)
    height = cell
    panels = []
    for image in (np.clip((image - low) / (high - low), 0.0, 1.0) for image in images):
        width = max(1, round(cell * image.shape[1] / image.shape[0]))
        panels.append(_to_bgr(cv2.resize(image, (width, height), interpolation=cv2.INTER_NEAREST)))
    row = np.full((height + 8, sum(p.shape[1] + 4 for p in panels) + 4, 3), BACKGROUND, np.uint8)
    x = 4
    for panel in panels:
        row[4 : 4 + height, x : x + panel.shape[1]] = panel
        x += panel.shape[1] + 4
    return row


def _labels_row(width: int, names: list[str], cell: int = SINGAN_CELL) -> np.ndarray:
    label = np.full((LABEL, width, 3), BACKGROUND, np.uint8)
    for index, name in enumerate(names):
        _text(label, name, 8 + index * (cell + 4), 16, 0.45, INSET_COLOUR)
    return label


def singan_tile(path: Path, patch: str, scale: int, scales: int, step: int, steps: int, real: np.ndarray,
                reconstruction: np.ndarray, samples: list[np.ndarray], metrics: dict[str, float]) -> None:
    """One epoch tile of a SinGAN scale: the real image at this scale, its reconstruction and the same fixed-noise
    samples every epoch, all in [0, 1]."""
    row = _singan_row([real, reconstruction, *samples])
    header = np.full((HEADER + 18, row.shape[1], 3), BACKGROUND, np.uint8)
    _text(header, f"{patch}  scale {scale + 1}/{scales} ({real.shape[0]}x{real.shape[1]})  step {step}/{steps}"
          "   (grey window: the real image's range)", 8, 20, 0.55)
    _text(header, "   ".join(f"{k} {v:.4f}" for k, v in metrics.items()), 8, 42, 0.45)
    _save(path, np.vstack([header, _labels_row(row.shape[1], ["real", "reconstruction"] + [f"sample {i + 1}" for i in range(len(samples))]), row]))


def singan_pyramid_sheet(path: Path, patch: str, reals: list[np.ndarray], reconstructions: list[np.ndarray],
                         samples: list[list[np.ndarray]]) -> None:
    """The trained pyramid of one SinGAN: a row per scale, coarsest first — real, reconstruction, fixed-noise samples."""
    rows = [_singan_row([real, rebuilt, *scale_samples]) for real, rebuilt, scale_samples in zip(reals, reconstructions, samples)]
    width = max(row.shape[1] for row in rows)
    rows = [np.pad(row, ((0, 0), (0, width - row.shape[1]), (0, 0)), constant_values=BACKGROUND[0]) for row in rows]
    for row, real in zip(rows, reals):
        _text(row, f"{real.shape[0]}x{real.shape[1]}", 8, 20, 0.45, INSET_COLOUR)
    header = np.full((HEADER, width, 3), BACKGROUND, np.uint8)
    _text(header, f"{patch}: SinGAN pyramid, coarse to fine (each row in its real image's grey range)", 8, 22, 0.55)
    names = ["real", "reconstruction"] + [f"sample {i + 1}" for i in range(len(samples[0]))]
    _save(path, np.vstack([header, _labels_row(width, names), *rows]))

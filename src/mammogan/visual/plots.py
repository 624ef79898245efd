"""Training history plots and the end-of-run animation of the epoch-change tiles."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from PIL import Image  # noqa: E402

from ..core.io import atomic_path  # noqa: E402
from ..metrics.texture import log_power_moments  # noqa: E402


def plot_history(csv_path: Path, png_path: Path) -> None:
    """One panel per loss/metric column against the step."""
    with csv_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c not in ("epoch", "step", "seconds", "images_per_s")] if rows else []
    if not columns:
        return
    cols = min(3, len(columns))
    lines = (len(columns) + cols - 1) // cols
    figure, axes = plt.subplots(lines, cols, figsize=(4.2 * cols, 2.8 * lines), squeeze=False)
    for axis, column in zip(axes.flat, columns):
        points = [(int(r["step"]), float(r[column])) for r in rows if r.get(column) not in (None, "")]
        if points:
            axis.plot(*zip(*points), marker="o", markersize=3)
        axis.set_title(column, fontsize=9)
        axis.set_xlabel("step", fontsize=8)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(columns):]:
        axis.axis("off")
    figure.tight_layout()
    with atomic_path(png_path) as temp:
        figure.savefig(temp, format="png", dpi=90)
    plt.close(figure)


def plot_power_spectra(png_path: Path, frequencies: np.ndarray, spectra: dict[str, np.ndarray]) -> None:
    """Radial power spectra (N, bins) per set as mean ± one standard deviation on a log scale; the first set is the
    reference (real) and is drawn as a grey band. Grid and checkerboard artefacts show as peaks at high frequency."""
    figure, axis = plt.subplots(figsize=(6.4, 4.2))
    for index, (name, values) in enumerate(spectra.items()):
        mean, std = log_power_moments(values)
        if index == 0:
            axis.fill_between(frequencies, 10 ** (mean - std), 10 ** (mean + std), color="0.75", label=f"{name} ± 1 sd")
            axis.plot(frequencies, 10**mean, color="0.35", linewidth=1.5)
        else:
            axis.plot(frequencies, 10**mean, linewidth=1.2, label=name)
    axis.set_yscale("log")
    axis.set_xlabel("radial frequency (cycles / pixel)")
    axis.set_ylabel("power (geometric mean over images)")
    axis.grid(alpha=0.3, which="both")
    axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(png_path) as temp:
        figure.savefig(temp, format="png", dpi=100)
    plt.close(figure)


def write_contact_sheet(tiles: list[Path], gif_path: Path, frame_ms: int = 700) -> Path | None:
    """An animated GIF through the epoch tiles (the last frame held longer)."""
    if not tiles:
        return None
    frames = [Image.open(p).convert("RGB") for p in tiles]
    size = frames[-1].size
    frames = [f if f.size == size else f.resize(size) for f in frames]
    frames = [f.quantize(colors=256, method=Image.Quantize.MEDIANCUT) for f in frames]
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 4]
    with atomic_path(gif_path) as temp:
        frames[0].save(temp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return gif_path

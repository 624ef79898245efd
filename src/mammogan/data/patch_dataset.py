"""Image patches for synthetic-image GANs: folders of PNG patches (and masks) read as arrays; samplers.PatchSampler streams them."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from .images import list_images, read_image

# The 8 ways a patch can be seen with flips and 90° rotations (training shows each patch all of them).
ORIENTATIONS = ("identity", "rot90", "rot180", "rot270", "flip", "flip_rot90", "flip_rot180", "flip_rot270")


def orient(images: np.ndarray, orientation: int) -> np.ndarray:
    """(N, H, W) images in one of the 8 `ORIENTATIONS` (a left-right flip, then k × 90° rotations)."""
    flipped = images[:, :, ::-1] if orientation >= 4 else images
    return np.ascontiguousarray(np.rot90(flipped, orientation % 4, axes=(1, 2)))


def patch_folder(folder: Path) -> Path:
    """Where `load_patches(folder, ...)` reads: `folder/images` when it exists, else `folder`."""
    return folder / "images" if (folder / "images").is_dir() else folder


def patch_names(folder: Path) -> list[str]:
    """File names of the patches `load_patches(folder, ...)` returns, in the same order."""
    return [path.name for path in list_images(patch_folder(folder))]


def load_patches(folder: Path, size: int) -> np.ndarray:
    """All patches of `folder/images` (or `folder` itself) as float32 (N, size, size) in [0, 1]."""
    source = patch_folder(folder)
    paths = list_images(source)
    if not paths:
        raise DataError(f"{source}: no patch images found.")
    return read_resized(paths, size)


def load_synthetic_patches(folders: list[Path], size: int, where: str) -> np.ndarray:
    """The images a GAN `infer` wrote into each folder, as listed by its manifest.csv (near-copies left out).

    `where` names the config key for error messages.
    """
    paths = []
    for folder in folders:
        manifest = folder / "manifest.csv"
        if not folder.is_dir():
            raise DataError(f"{where}: folder {folder} does not exist (expected the output of a GAN `infer`).")
        if not manifest.is_file():
            raise DataError(f"{where}: {folder} has no manifest.csv (expected the output of a GAN `infer`: images/ and manifest.csv).")
        with manifest.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("status") != "rejected_near_copy"]
        listed = [folder / "images" / row["image"] for row in rows if row.get("image")]
        missing = [path.name for path in listed if not path.is_file()]
        if missing or not listed:
            problem = f"{len(missing)} image(s) listed in manifest.csv are missing from images/, e.g. {missing[0]}" if missing else "its manifest.csv lists no images"
            raise DataError(f"{where}: {folder}: {problem}.")
        paths.extend(listed)
    return read_resized(paths, size)


def load_masks(folder: Path, size: int, paired: bool = False) -> tuple[np.ndarray, list[str]]:
    """Binary masks (float32 {0, 1}, (N, size, size)) of `folder/masks` (or `folder`) and their file names.

    `paired`: one mask per patch of `load_patches(folder)`, in its order, from `folder/masks` by file name.
    Resizing averages the mask and keeps pixels at least half covered, so it stays strictly binary.
    """
    if paired:
        source = folder / "masks"
        paths = [source / path.name for path in list_images(patch_folder(folder))]
    else:
        source = folder / "masks" if (folder / "masks").is_dir() else folder
        paths = list_images(source)
    missing = [path.name for path in paths if not path.is_file()]
    if missing or not paths:
        problem = f"no mask for {len(missing)} of {len(paths)} patches, e.g. {missing[0]}" if missing else "no mask images found"
        raise DataError(f"{source}: {problem} (masks are paired with patches by file name).")
    return (read_resized(paths, size, binary=True) >= 0.5).astype(np.float32), [path.name for path in paths]


def read_resized(paths: list[Path], size: int, binary: bool = False) -> np.ndarray:
    """Images in [0, 1] at size × size; `binary`: any non-zero pixel counts as 1 (masks stored as 0/1 or 0/255)."""
    patches = []
    for path in paths:
        image = read_image(path)
        values = (image > 0).astype(np.float32) if binary else image.astype(np.float32) / np.iinfo(image.dtype).max
        patches.append(resize_image(values, (size, size)))
    return np.clip(np.stack(patches), 0.0, 1.0)


def resize_image(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A float image at `shape` (height, width): area-averaged when shrinking, bicubic when growing."""
    if values.shape == shape:
        return values.astype(np.float32)
    interpolation = cv2.INTER_AREA if shape[0] < values.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(values.astype(np.float32), (shape[1], shape[0]), interpolation=interpolation)

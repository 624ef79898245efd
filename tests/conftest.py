"""Shared test fixtures: the real sample data, synthetic DICOMs and a `mammogan prepare` runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def prepared_sample(tmp_path_factory) -> Path:
    """The bundled MIAS sample prepared once per session (8-bit, ×2 pairs, lesion and healthy patches).

    Returns the dataset folder; tests read it and never write into it.
    """
    from mammogan.cli import main

    root = tmp_path_factory.mktemp("prepared_sample")
    config = root / "prepare.config"
    sample = REPO / "sample" / "mias"
    config.write_text(f'[prepare]\nkind = "mias"\ninput_dir = "{sample}"\ninfo_file = "{sample / "Info.txt"}"\n'
                      'output_dir = "./data"\nbit_depth = 8\nsr_scales = [2]\n')
    assert main(["prepare", str(config)]) == 0
    return root / "data"


@pytest.fixture
def shared_data() -> Path:
    """`../shared/data` beside the repository; tests that need it skip when it is absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared sample data not found at {path}")
    return path


def _synthetic_breast(width: int, height: int, chest_wall: str = "left", seed: int = 0) -> np.ndarray:
    """A 12-bit mammogram-like image: a textured half-ellipse on the chest-wall side, background 0."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    wall_x = 0.0 if chest_wall == "left" else width - 1.0
    inside = ((xs - wall_x) / (0.85 * width)) ** 2 + ((ys - height / 2) / (0.45 * height)) ** 2 <= 1.0
    coarse = rng.random((height // 32 + 2, width // 32 + 2))
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    values = 1500 + 1500 * np.clip(texture, 0, 1) + rng.normal(0, 40, (height, width))
    return np.where(inside, np.clip(values, 1, 4095), 0).astype(np.uint16)


@pytest.fixture
def synthetic_breast() -> Callable[..., np.ndarray]:
    """`synthetic_breast(width, height, chest_wall="left"|"right", seed=0)` → uint16 image."""
    return _synthetic_breast


@pytest.fixture
def write_dicom() -> Callable[..., Path]:
    """Write an uncompressed digital-mammography DICOM: `write_dicom(path, pixels, **header_fields)`."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    mammography = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography X-Ray Image Storage - For Presentation

    def write(path: Path, pixels: np.ndarray | None, **fields: Any) -> Path:
        dataset = Dataset()
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        dataset.file_meta.MediaStorageSOPClassUID = mammography
        dataset.SOPClassUID = mammography
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.Modality = "MG"
        for name, value in fields.items():
            setattr(dataset, name, value)
        if pixels is not None:
            dataset.set_pixel_data(pixels, "MONOCHROME2", 12 if pixels.dtype == np.uint16 else 8)
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.save_as(path, enforce_file_format=True)
        return path

    return write


@pytest.fixture
def log_text(caplog) -> Callable[[], str]:
    """`log_text()`: the captured log so far with the CLI's line wrapping undone (it wraps error messages at 100
    columns, so where a line breaks depends on the length of the temporary paths in them)."""
    return lambda: " ".join(caplog.text.split())


@pytest.fixture
def run_prepare() -> Callable[..., tuple[int, Path]]:
    """`run_prepare(config_path, **prepare_keys)` writes a [prepare] config and runs `mammogan prepare` on it.

    Relative paths in the keys resolve against the config's folder. Returns (exit code, output_dir).
    """
    from mammogan.cli import main
    from mammogan.config.types import toml_literal

    def run(config_path: Path, **keys: Any) -> tuple[int, Path]:
        keys.setdefault("output_dir", "out")
        lines = ["[prepare]"] + [f"{key} = {toml_literal(value)}" for key, value in keys.items()]
        config_path.parent.mkdir(parents=True, exist_ok=True)
        config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        code = main(["prepare", str(config_path)])
        return code, (config_path.parent / keys["output_dir"]).resolve()

    return run

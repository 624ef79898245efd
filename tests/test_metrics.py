"""Full-reference metrics against independent piq values (tests/fixtures/metrics), 8- and 16-bit."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from mammogan.data.images import read_image
from mammogan.metrics import full_reference
from mammogan.metrics.full_reference import MS_SSIM_WEIGHTS, higher_is_better, ms_ssim
from mammogan.registry import METRICS

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"
REFERENCE = json.loads((FIXTURES / "reference_values.json").read_text())
METRIC_NAMES = ["psnr", "ssim", "ms_ssim", "gmsd", "ms_gmsd", "mdsi", "haarpsi"]

# Our float32 TensorFlow values vs piq in float64. Largest differences measured when the fixture was
# made: PSNR 0.0030 dB (piq adds 1e-8 to the normalised MSE), relative: SSIM 4.3e-5, MS-SSIM 3.8e-5,
# GMSD 6.8e-6, MS-GMSD 1.0e-6, MDSI 1.8e-5, HaarPSI 4.1e-6. Tolerances leave a margin of 3-10x.
ABSOLUTE_DB = {"psnr": 0.01}
RELATIVE = {"ssim": 3e-4, "ms_ssim": 3e-4, "gmsd": 5e-5, "ms_gmsd": 5e-5, "mdsi": 1e-4, "haarpsi": 5e-5}


def load_set(name: str) -> tuple[np.ndarray, np.ndarray, float, list[dict]]:
    """Reference and distorted batches (B, H, W, 1) float32 of one fixture set, with its pairs."""
    pairs = [pair for pair in REFERENCE["pairs"] if pair["set"] == name]
    reference = np.stack([read_image(FIXTURES / pair["reference"]) for pair in pairs]).astype(np.float32)
    distorted = np.stack([read_image(FIXTURES / pair["distorted"]) for pair in pairs]).astype(np.float32)
    return reference[..., None], distorted[..., None], pairs[0]["data_range"], pairs


def compute(name: str, reference: np.ndarray, distorted: np.ndarray, data_range: float) -> np.ndarray:
    if name == "ms_ssim_3scales":
        return ms_ssim(reference, distorted, data_range, power_factors=MS_SSIM_WEIGHTS[:3]).numpy()
    return METRICS.get(name)(reference, distorted, data_range).numpy()


def test_registered_names_and_directions() -> None:
    assert set(METRIC_NAMES) <= set(METRICS.names())
    assert sorted(higher_is_better) == sorted(METRIC_NAMES)


@pytest.mark.parametrize("set_name", sorted(REFERENCE["sets"]))
def test_matches_piq_reference_values(set_name: str) -> None:
    reference, distorted, data_range, pairs = load_set(set_name)
    assert data_range == (65535.0 if set_name.startswith("b16") else 255.0)
    assert reference.max() > 255 if data_range == 65535.0 else reference.max() <= 255
    for metric in pairs[0]["values"]:
        ours = compute(metric, reference, distorted, data_range)
        expected = np.array([pair["values"][metric] for pair in pairs])
        assert ours.shape == (len(pairs),)
        base = metric.removesuffix("_3scales")
        if base in ABSOLUTE_DB:
            np.testing.assert_allclose(ours, expected, rtol=0, atol=ABSOLUTE_DB[base], err_msg=f"{set_name} {metric}")
        else:
            np.testing.assert_allclose(ours, expected, rtol=RELATIVE[base], atol=0, err_msg=f"{set_name} {metric}")


def test_fixture_covers_every_metric_at_both_bit_depths() -> None:
    covered: dict[float, set[str]] = defaultdict(set)
    for pair in REFERENCE["pairs"]:
        covered[pair["data_range"]].update(m.removesuffix("_3scales") for m in pair["values"])
    assert covered[255.0] == set(METRIC_NAMES)
    assert covered[65535.0] == set(METRIC_NAMES)


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_scores_do_not_depend_on_bit_depth(metric: str) -> None:
    """An 8-bit pair scaled x257 to 16 bits (255 -> 65535) scores the same with data_range 65535.

    tf.image computes SSIM in float32, where squares of 16-bit values are no longer exact integers:
    measured up to 1.1e-4 relative difference, hence the wider tolerance for (MS-)SSIM.
    """
    reference, distorted, _, _ = load_set("a8")
    eight = compute(metric, reference, distorted, 255.0)
    sixteen = compute(metric, reference * 257.0, distorted * 257.0, 65535.0)
    rtol = 3e-4 if metric in ("ssim", "ms_ssim") else 2e-5
    np.testing.assert_allclose(sixteen, eight, rtol=rtol, atol=1e-6)


def test_identical_images_score_perfectly() -> None:
    reference, _, _, _ = load_set("a8")
    expected = {"ssim": 1.0, "ms_ssim": 1.0, "gmsd": 0.0, "ms_gmsd": 0.0, "mdsi": 0.0, "haarpsi": 1.0}
    for metric, value in expected.items():
        np.testing.assert_allclose(compute(metric, reference, reference, 255.0), value, atol=1e-5, err_msg=metric)
    assert np.all(np.isinf(compute("psnr", reference, reference, 255.0)))


@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_direction_follows_higher_is_better(metric: str) -> None:
    """Light noise must score better than heavy noise in the direction `higher_is_better` states."""
    reference, _, _, _ = load_set("a8")
    rng = np.random.default_rng(7)
    light = np.clip(reference + rng.normal(0, 3, reference.shape), 0, 255).astype(np.float32)
    heavy = np.clip(reference + rng.normal(0, 20, reference.shape), 0, 255).astype(np.float32)
    light_score = compute(metric, reference, light, 255.0)
    heavy_score = compute(metric, reference, heavy, 255.0)
    better = light_score > heavy_score if higher_is_better[metric] else light_score < heavy_score
    assert np.all(better), (light_score, heavy_score)


def test_ms_ssim_rejects_small_images_with_advice() -> None:
    reference, distorted, _, _ = load_set("d8")  # 64x64
    with pytest.raises(ValueError, match=r"at least 161x161 pixels, got 64x64. Pass at most 3 power_factors"):
        ms_ssim(reference, distorted, 255.0)
    with pytest.raises(ValueError, match=r"MS-SSIM with 4 scales needs images of at least 81x81"):
        ms_ssim(reference, distorted, 255.0, power_factors=MS_SSIM_WEIGHTS[:4])
    with pytest.raises(ValueError, match=r"got 16x16. Pass at most 1 power_factors"):
        ms_ssim(reference[:, :16, :16], distorted[:, :16, :16], 255.0, power_factors=MS_SSIM_WEIGHTS[:2])
    with pytest.raises(ValueError, match=r"at least 21x21 pixels, got 8x8.$"):  # smaller than one SSIM window
        ms_ssim(reference[:, :8, :8], distorted[:, :8, :8], 255.0, power_factors=MS_SSIM_WEIGHTS[:2])
    assert full_reference.ms_ssim_min_size(3) == 41


def test_wrong_data_range_or_shape_is_refused() -> None:
    reference, distorted, _, _ = load_set("a8")
    with pytest.raises(ValueError, match=r"outside \[0, data_range=1.0\]"):
        METRICS.get("gmsd")(reference, distorted, 1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        METRICS.get("ssim")(reference, distorted[:, :-1], 255.0)
    uint8 = METRICS.get("psnr")(reference.astype(np.uint8), distorted.astype(np.uint8), 255.0)
    np.testing.assert_allclose(uint8, METRICS.get("psnr")(reference, distorted, 255.0), rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        METRICS.get("haarpsi")(reference[..., 0], distorted[..., 0], 255.0)

"""What the synthetic-GAN discriminators can be shown besides the image: its Laplacian and the batch's spread."""

from __future__ import annotations

import numpy as np
import pytest

from mammogan.config.loader import validate
from mammogan.errors import ConfigError
from mammogan.models.conditional import build_conditional_discriminator
from mammogan.models.discriminators import build_dcgan_discriminator
from mammogan.models.layers import LAPLACIAN_GAIN, LaplacianChannel, MinibatchStd

SIDE = 32


def test_the_laplacian_channel_of_a_cosine_is_the_cosine_times_its_discrete_eigenvalue():
    cycles = 4
    xs = np.arange(SIDE)
    image = np.tile(np.cos(2 * np.pi * cycles * xs / SIDE), (SIDE, 1)).astype(np.float32)
    both = np.asarray(LaplacianChannel()(image[None, ..., None]))[0]
    eigenvalue = -(2 - 2 * np.cos(2 * np.pi * cycles / SIDE)) * LAPLACIAN_GAIN
    np.testing.assert_allclose(both[..., 0], image, atol=1e-6)
    np.testing.assert_allclose(both[:, 1:-1, 1], eigenvalue * image[:, 1:-1], atol=1e-5)  # columns off the mirrored edge
    flat = np.full((1, SIDE, SIDE, 1), 0.3, np.float32)
    assert np.abs(np.asarray(LaplacianChannel()(flat))[..., 1]).max() < 1e-6


def test_the_minibatch_channel_is_the_features_spread_across_the_batch():
    rng = np.random.default_rng(0)
    varied = rng.normal(0.0, 0.5, (64, 4, 4, 8)).astype(np.float32)
    alike = np.repeat(varied[:1], 64, axis=0)
    spread = np.asarray(MinibatchStd()(varied))
    assert spread.shape == (64, 4, 4, 9)
    np.testing.assert_allclose(spread[..., :8], varied)
    assert abs(float(spread[0, 0, 0, 8]) - 0.5) < 0.03 and np.ptp(spread[..., 8]) == 0.0
    assert float(np.asarray(MinibatchStd()(alike))[0, 0, 0, 8]) < 1e-3


@pytest.mark.parametrize("minibatch_std", [False, True])
def test_only_the_minibatch_discriminator_judges_an_image_by_its_batch(minibatch_std):
    discriminator = build_dcgan_discriminator(SIDE, 8, spectral_norm=True, d_laplacian=True, d_minibatch_std=minibatch_std)
    first_conv = next(layer for layer in discriminator.layers if hasattr(layer, "layer"))
    assert first_conv.layer.kernel.shape[2] == 2  # image and Laplacian
    rng = np.random.default_rng(1)
    varied = rng.uniform(-1, 1, (8, SIDE, SIDE, 1)).astype(np.float32)
    alike = varied.copy()
    alike[1:] = varied[0]
    first_in_each = np.asarray(discriminator(varied)[0])[0], np.asarray(discriminator(alike)[0])[0]
    changed = abs(float(first_in_each[0][0] - first_in_each[1][0]))
    assert changed > 1e-4 if minibatch_std else changed < 1e-6


def test_the_conditional_discriminator_takes_both_inputs_and_others_refuse_them(tmp_path):
    conditional = build_conditional_discriminator(SIDE, 8, True, classes=["normal", "mass"], d_laplacian=True, d_minibatch_std=True)
    assert {"laplacian", "minibatch_std"} <= {layer.name for layer in conditional.layers}
    base = {"model": {"task": "srgan", "discriminator": "vgg", "d_minibatch_std": True},
            "dataset": {"train_dir": str(tmp_path)}, "train": {"output_dir": str(tmp_path / "out")}}
    with pytest.raises(ConfigError, match=r"\[model\] d_minibatch_std.*dcgan"):
        validate(base, tmp_path / "train_eval_infer.config")

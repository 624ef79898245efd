"""The StyleGAN2-like generator: demodulation, stateless per-latent noise, and training in both patch families."""

from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from pathlib import Path

import keras
import numpy as np
import pytest

from mammogan.config.loader import validate
from mammogan.models.stylegan2 import ModulatedConv2D, NoiseInjection, build_stylegan2_generator
from mammogan.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]


def test_demodulation_makes_the_output_independent_of_the_style_scale():
    """conv(x·c·s) / ‖W·c·s‖ = conv(x·s) / ‖W·s‖: scaling the style by any c leaves a demodulated conv unchanged,
    while a plain modulated conv scales with it."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(2, 8, 8, 4)).astype(np.float32)
    w = rng.normal(size=(2, 6)).astype(np.float32)
    for demodulate, expected in ((True, 1.0), (False, 5.0)):
        layer = ModulatedConv2D(3, demodulate=demodulate)
        before = np.asarray(layer([image, w]))
        layer.style.kernel.assign(layer.style.kernel * 5.0)
        layer.style.bias.assign(layer.style.bias * 5.0)
        after = np.asarray(layer([image, w]))
        np.testing.assert_allclose(after, expected * before, rtol=1e-4, atol=1e-5)
    output = np.asarray(ModulatedConv2D(16)([rng.normal(size=(4, 16, 16, 32)).astype(np.float32), w[:1].repeat(4, 0)]))
    assert 0.6 < output.std() < 1.6  # demodulated: unit-scale output from unit-scale input whatever the style


def test_noise_is_a_function_of_the_latent_and_reaches_the_image():
    keras.utils.set_random_seed(1)
    model = build_stylegan2_generator(image_size=32, latent_dim=16, filters=8, mapping_layers=2)
    latents = np.random.default_rng(2).normal(size=(6, 16)).astype(np.float32)
    quiet = np.asarray(model(latents))
    for layer in model.layers:
        if isinstance(layer, NoiseInjection):
            layer.strength.assign(np.full(layer.strength.shape, 0.5, np.float32))
    noisy = np.asarray(model(latents))
    assert np.abs(noisy - quiet).mean() > 1e-3  # the noise inputs change the image
    np.testing.assert_array_equal(np.asarray(model(latents[3:5])), noisy[3:5])  # same latent, same noise, any batch
    np.testing.assert_array_equal(np.asarray(model(latents, training=True)), noisy)  # no random state
    assert model(np.zeros((1, 16), np.float32)).shape == (1, 32, 32, 1)
    assert build_stylegan2_generator(image_size=128, latent_dim=16, filters=4, mapping_layers=1).output_shape == (None, 128, 128, 1)
    with pytest.raises(ValueError, match="power of two"):
        build_stylegan2_generator(image_size=48)


@pytest.mark.parametrize("project, generator", [("SNGAN-MIAS", "stylegan2"), ("ACGAN-MIAS", "conditional_stylegan2")])
def test_stylegan2_trains_in_the_unconditional_and_conditional_families(prepared_sample, tmp_path, project, generator):
    path = REPO / "projects" / "GAN" / project / "train_eval_infer.config"
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    raw["model"].update(generator=generator, image_size=32, latent_dim=16, filters=8, d_filters=8, mapping_layers=2)
    raw["dataset"].update(train_dir=str(prepared_sample / "patches" / "train"), valid_dir=str(prepared_sample / "patches" / "valid"),
                          test_dir=str(prepared_sample / "patches" / "test"))
    raw["train"].update(output_dir=str(tmp_path / "run"), batch_size=8, gan_steps=6, steps_per_epoch=3)
    Trainer(validate(raw, path)).fit(resume=False)
    saved = tmp_path / "run" / "models" / "final" / "generator.keras"
    # A fresh process, as `evaluate` and `infer` run: loading must not rely on the training run's imports.
    loaded = subprocess.run([sys.executable, "-c", "import sys; from mammogan.models.io import load_model; "
                             "print(load_model(sys.argv[1]).name)", str(saved)], capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().endswith("stylegan2_generator")
    with (tmp_path / "run" / "train_metrics.csv").open() as handle:
        rows = handle.read().splitlines()
    header = rows[0].split(",")
    assert all(math.isfinite(float(row.split(",")[header.index("gan/g")])) for row in rows[2:])

"""Each synthetic-GAN family's experiment config (DCGAN, WGAN-GP, SNGAN), shrunk to tiny sizes, trains on the sample."""

from __future__ import annotations

import csv
import math
import tomllib
from pathlib import Path

import keras
import pytest
import tensorflow as tf
from PIL import Image

from mammogan.config.loader import render_config, validate
from mammogan.data.patch_dataset import load_patches
from mammogan.losses import spectral_loss_per_example
from mammogan.models.sampling import latent_batch
from mammogan.train.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
STEPS = 12


def shrunk(family: str, data: Path, output: Path, **train: object) -> tuple[dict, Trainer]:
    """The family's experiment config with tiny models and the prepared sample's patches (an override, not a copy);
    `train` overrides further [train] keys before the Trainer is built."""
    path = REPO / "projects" / "GAN" / family / "train_eval_infer.config"
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    raw["model"].update(image_size=32, latent_dim=16, filters=8, d_filters=8)
    raw["dataset"].update(train_dir=str(data / "patches" / "train"), valid_dir=str(data / "patches" / "valid"),
                          test_dir=str(data / "patches" / "test"))
    raw["train"].update(output_dir=str(output), batch_size=8, gan_steps=STEPS, steps_per_epoch=6, ema_decay=0.0)
    if raw["train"].get("ada_target"):
        raw["train"].update(ada_speed_images=500.0, ada_interval=1)  # p moves visibly within a dozen steps
    raw["train"].update(train)
    return raw, Trainer(validate(raw, path))


def history(output: Path) -> list[dict[str, str]]:
    with (output / "train_metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def finite_losses(rows: list[dict[str, str]]) -> bool:
    return all(math.isfinite(float(row[key])) for row in rows[1:] for key in ("gan/d", "gan/g"))


def test_wgan_gp_family_defaults_and_critic_steps(prepared_sample, tmp_path):
    raw, trainer = shrunk("WGANGP-MIAS", prepared_sample, tmp_path / "out")
    train = raw["train"]
    assert (train["adversarial_loss"], train["gp_weight"], train["n_critic"], train["beta_1"], train["beta_2"]) == \
        ("wasserstein", 10.0, 5, 0.0, 0.9)
    trainer.fit(resume=False)
    task = trainer.task
    assert int(task.g_optimizer.iterations.numpy()) == STEPS
    assert int(task.d_optimizer.iterations.numpy()) == 5 * STEPS
    layers = [type(layer).__name__ for layer in task.discriminator.layers]
    assert "BatchNormalization" not in layers and "LayerNormalization" in layers
    rows = history(tmp_path / "out")
    assert int(rows[-1]["step"]) == STEPS and finite_losses(rows)
    assert all(float(row["aug/p"]) == 1.0 for row in rows)  # plain DiffAugment: every example augmented
    # images/s counts every real image the epoch consumed: n_critic batches per generator step.
    for before, row in zip(rows, rows[1:]):
        images = (int(row["step"]) - int(before["step"])) * train["batch_size"] * 5
        assert float(row["images_per_s"]) * float(row["seconds"]) == pytest.approx(images, rel=0.02)


def test_sngan_family_is_spectral_normalised_with_ada(prepared_sample, tmp_path):
    raw, trainer = shrunk("SNGAN-MIAS", prepared_sample, tmp_path / "out")
    assert raw["train"]["adversarial_loss"] == "hinge" and raw["model"]["spectral_norm"] is True
    trainer.fit(resume=False)
    task = trainer.task
    weighted = [layer for layer in task.discriminator.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    wrapped = [layer for layer in task.discriminator.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert not weighted and len(wrapped) >= 3  # every conv and the logits layer sit inside SpectralNormalization
    assert "BatchNormalization" not in [type(layer).__name__ for layer in task.discriminator.layers]
    assert int(task.d_optimizer.iterations.numpy()) == int(task.g_optimizer.iterations.numpy()) == STEPS
    rows = history(tmp_path / "out")
    assert int(rows[-1]["step"]) == STEPS and finite_losses(rows)
    p = [float(row["aug/p"]) for row in rows]
    assert p[0] == 0.0 and all(0.0 <= value <= 1.0 for value in p)
    # p moves by ±images / ada_speed_images per update (8 images / 500 here), so it has left 0 after training
    # unless D never reaches the target; r_t is logged either way.
    assert p[-1] == pytest.approx(float(task.ada.p.numpy())) and "aug/r_t" in rows[-1]


def test_dcgan_family_trains_and_evaluate_scores_each_step_snapshot(prepared_sample, tmp_path):
    """`[train] snapshot_every` exports models/step_<step>; evaluate adds one row per snapshot (the budget study)."""
    from mammogan.cli import main

    raw, _ = shrunk("DCGAN-MIAS", prepared_sample, tmp_path / "out")
    raw["train"]["snapshot_every"] = 1
    raw["eval"].update(output_dir=str(tmp_path / "evaluation"), num_samples=24, kid_subsets=5, kid_subset_size=8)
    config = tmp_path / "train_eval_infer.config"
    config.write_text(render_config(validate(raw, config)))
    trainer = Trainer(validate(raw, config))
    trainer.fit(resume=False)
    rows = history(tmp_path / "out")
    assert int(rows[-1]["step"]) == STEPS and finite_losses(rows)
    assert int(trainer.task.d_optimizer.iterations.numpy()) == STEPS
    models = tmp_path / "out" / "models"
    assert sorted(p.name for p in models.glob("step_*")) == ["step_000006", "step_000012"]
    last = keras.models.load_model(models / "step_000012" / "generator.keras", compile=False)
    final = keras.models.load_model(models / "final" / "generator.keras", compile=False)
    assert all((a == b).all() for a, b in zip(last.get_weights(), final.get_weights()))

    assert main(["evaluate", str(config)]) == 0
    with (tmp_path / "evaluation" / "evaluation.csv").open(newline="") as handle:
        evaluation = {row["arm"]: row for row in csv.DictReader(handle)}
    assert list(evaluation) == ["generator", "step0_generator", "step_6", "step_12", "gaussian_noise", "real_train"]
    assert all(0.0 <= float(evaluation[arm]["texture_c2st"]) <= 1.0 for arm in ("step_6", "step_12"))
    assert float(evaluation["gaussian_noise"]["texture_c2st"]) > 0.9
    # white noise is flat where tissue falls off: far outside the real ± 1 sd spectrum band; other patients' patches inside
    assert float(evaluation["gaussian_noise"]["spectrum_gap_sd"]) > 3.0
    assert float(evaluation["real_train"]["spectrum_gap_sd"]) < 1.0
    with (tmp_path / "evaluation" / "power_spectrum.csv").open(newline="") as handle:
        bands = [row for row in csv.DictReader(handle) if float(row["real_log10_power"]) > -19]  # 32 px leaves some bins empty
    assert len(bands) >= 16 and all(float(row["real_log10_sd"]) > 0 for row in bands)


def test_a_few_hundred_steps_move_samples_towards_the_real_patches(prepared_sample, tmp_path):
    """Issue proof on the bundled sample: KID and the moment distance to the validation patches fall from step 0,
    a tile per epoch from the same latents (and the GIF) is written, and `infer` samples a dataset folder."""
    from mammogan.cli import main
    from mammogan.data.images import read_image

    raw, _ = shrunk("SNGAN-MIAS", prepared_sample, tmp_path / "out")
    raw["model"].update(filters=16, d_filters=16)
    raw["train"].update(gan_steps=200, steps_per_epoch=100, ema_decay=0.99)
    raw["infer"].update(output_dir=str(tmp_path / "synthetic"), num_samples=6)
    Trainer(validate(raw, REPO / "projects" / "GAN" / "SNGAN-MIAS" / "train_eval_infer.config")).fit(resume=False)
    rows = history(tmp_path / "out")
    start, end = rows[0], rows[-1]
    assert float(end["val/kid"]) < float(start["val/kid"])
    assert float(end["val/moment_distance"]) < float(start["val/moment_distance"])
    tiles = sorted((tmp_path / "out" / "epoch_tiles").glob("epoch_*.png"))
    assert [tile.name for tile in tiles] == [f"epoch_{epoch:04d}.png" for epoch in range(len(rows))] and len(rows) == 3
    with Image.open(tmp_path / "out" / "epoch_tiles.gif") as gif:
        assert gif.n_frames == len(tiles)  # one frame per epoch tile

    config = tmp_path / "train_eval_infer.config"  # the same config, as a file the CLI reads
    config.write_text(render_config(validate(raw, config)))
    assert main(["infer", str(config)]) == 0
    images = sorted((tmp_path / "synthetic" / "images").glob("*.png"))
    assert len(images) == 6 and all(read_image(path).shape == (32, 32) and read_image(path).dtype.name == "uint8" for path in images)
    with (tmp_path / "synthetic" / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    assert [row["image"] for row in manifest] == [path.name for path in images]
    assert {row["seed"] for row in manifest} == {"7"} and all(row["checkpoint"].endswith("generator.keras") for row in manifest)


def test_spectral_norm_wraps_every_weighted_layer_of_the_sr_discriminator():
    from mammogan.registry import DISCRIMINATORS

    model = DISCRIMINATORS.get("vgg")(d_filters=4, d_blocks=2, spectral_norm=True)
    bare = [layer.name for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]
    wrapped = [layer for layer in model.layers if isinstance(layer, keras.layers.SpectralNormalization)]
    assert not bare and len(wrapped) == 1 + 2 * 2 + 2  # input conv, two convs per block, fc and logits


def test_spectral_weight_pulls_the_samples_spectrum_towards_the_real_patches(prepared_sample, tmp_path):
    """`[train] spectral_weight` adds the logged `g_spectral` term, and the trained generator's samples end much
    closer to the real patches' spectrum than the same run's without the term."""
    real = load_patches(prepared_sample / "patches" / "train", 32)[..., None] * 2.0 - 1.0
    gaps = {}
    for weight in (0.0, 20.0):
        _, trainer = shrunk("DCGAN-MIAS", prepared_sample, tmp_path / f"out{weight:g}", spectral_weight=weight,
                            gan_steps=150, steps_per_epoch=50)
        trainer.fit(resume=False)
        samples = trainer.task.sample(latent_batch(len(real), 16, seed=3))[..., None] * 2.0 - 1.0
        gaps[weight] = float(spectral_loss_per_example(tf.constant(real, tf.float32), tf.constant(samples, tf.float32))[0])
    spectral = [float(row["gan/g_spectral"]) for row in history(tmp_path / "out20")[1:]]
    assert len(spectral) == 3 and all(math.isfinite(value) for value in spectral) and spectral[-1] < 0.5 * spectral[0]
    assert "gan/g_spectral" not in history(tmp_path / "out0")[-1]
    assert gaps[20.0] < 0.5 * gaps[0.0]


def test_r1_gamma_flattens_the_discriminator_at_real_patches(prepared_sample, tmp_path):
    """The same short run with and without the R1 penalty: with it, D's input gradient at real patches is smaller."""
    reals = tf.constant(load_patches(prepared_sample / "patches" / "valid", 32)[:32, ..., None] * 2.0 - 1.0)

    def gradient_norm(gamma: float) -> float:
        _, trainer = shrunk("DCGAN-MIAS", prepared_sample, tmp_path / f"r1_{gamma}", r1_gamma=gamma, gan_steps=24)
        trainer.fit(resume=False)
        discriminator = trainer.task.discriminator
        with tf.GradientTape() as tape:
            tape.watch(reals)
            scores = tf.reduce_sum(discriminator(reals, training=True)[0])  # as the penalty saw it (batch norm)
        return float(tf.reduce_mean(tf.reduce_sum(tf.square(tape.gradient(scores, reals)), axis=[1, 2, 3])))

    assert gradient_norm(10.0) < 0.8 * gradient_norm(0.0)  # 44 vs 73 measured

"""Mask-to-image GAN (pix2pix + PatchGAN, optional SPADE): shapes, the mask prior, train → tiles → infer image/mask pairs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mammogan.cli import main
from mammogan.data.images import read_image
from mammogan.data.mask_prior import MaskPrior, moved_mask, random_blob
from mammogan.data.patch_dataset import load_masks
from mammogan.models.pix2pix import build_patchgan_discriminator, build_pix2pix_generator


@pytest.mark.parametrize("size", [32, 64])
@pytest.mark.parametrize("spade", [False, True])
def test_generator_maps_masks_to_images_in_tanh_range(size, spade):
    generator = build_pix2pix_generator(image_size=size, latent_dim=8, filters=4, spade=spade)
    masks = np.zeros((2, size, size, 1), np.float32)
    masks[1, size // 4 : size // 2, size // 4 : size // 2] = 1.0
    latents = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    images = np.asarray(generator([masks, latents]))
    assert images.shape == (2, size, size, 1) and images.dtype == np.float32
    assert np.all(np.abs(images) <= 1.0)
    assert any("spade" in layer.name for layer in generator.layers) == spade
    logits = build_patchgan_discriminator(image_size=size, d_filters=4, d_blocks=3)(np.concatenate([masks, images], -1))[0]
    assert logits.shape == (2, size // 8, size // 8, 1)  # one logit per patch of the pair


def test_mask_prior_is_binary_seeded_and_records_sources():
    real = np.zeros((3, 32, 32), np.float32)
    real[0, 10:20, 8:14] = 1.0
    real[2, 2:6, 2:30] = 1.0  # real[1] is empty (a healthy patch): never drawn as a shape
    prior = MaskPrior(32, seed=5, real_masks=real, real_names=["a.png", "empty.png", "c.png"], real_fraction=0.5)
    masks, sources = prior.draw(40)
    again, sources_again = MaskPrior(32, 5, real, ["a.png", "empty.png", "c.png"], 0.5).draw(40)
    np.testing.assert_array_equal(masks, again)
    assert sources == sources_again
    assert masks.shape == (40, 32, 32) and set(np.unique(masks)) == {0.0, 1.0}
    assert all(mask.any() for mask in masks)
    assert set(sources) == {"prior:blob", "prior:real:a.png", "prior:real:c.png"}
    assert 10 <= sources.count("prior:blob") <= 30
    other, _ = MaskPrior(32, 6, real, ["a.png", "empty.png", "c.png"], 0.5).draw(40)
    assert not np.array_equal(masks, other)
    # A moved real mask keeps roughly its area (scale 0.75-1.25) and stays binary.
    rng = np.random.default_rng(1)
    moved = moved_mask(real[0].astype(np.uint8), rng)
    assert set(np.unique(moved)) <= {0, 1} and 0.5 * 60 <= moved.sum() <= 1.6 * 60
    blobs, blob_sources = MaskPrior(32, 5).draw(4)  # no real masks: blobs only
    assert blob_sources == ["prior:blob"] * 4 and len({blob.tobytes() for blob in blobs}) == 4
    blob = random_blob(64, np.random.default_rng(0))
    assert blob.dtype == np.uint8 and set(np.unique(blob)) == {0, 1}


def write_config(folder: Path, data: Path, generator: str = "pix2pix_unet", **infer: str) -> Path:
    """Tiny SPADE pix2pix at 32 px on the prepared sample's patch pairs."""
    splits = "\n".join(f'{split}_dir = "{data / "patches" / split}"' for split in ("train", "valid", "test"))
    infer = {"output_dir": '"./run/synthetic"', "num_samples": "6", "seed": "3", **infer}
    infer_lines = "".join(f"{key} = {value}\n" for key, value in infer.items())
    spade = "spade = true" if generator == "pix2pix_unet" else ""  # only pix2pix_unet reads it
    path = folder / "pix2pix.config"
    path.write_text(f"""
[model]
task = "mask_to_image"
generator = "{generator}"
discriminator = "patchgan"
{spade}
image_size = 32
latent_dim = 16
filters = 16
d_filters = 16
d_blocks = 3

[dataset]
{splits}

[train]
output_dir = "./run"
batch_size = 8
gan_steps = 100
steps_per_epoch = 50
g_learning_rate = 2e-4
d_learning_rate = 2e-4
beta_1 = 0.5
pixel_loss = "l1"
loss_weights = {{pixel = 10.0, adversarial = 1.0, mode_seeking = 0.1}}
ema_decay = 0.0
tile_images = 2
collapse_diversity = 0.01       # exercises the collapse probe (real/fake logits of the mask pairs)

[infer]
{infer_lines}""")
    return path


def test_train_lowers_moment_distance_writes_tiles_and_infers_pairs(prepared_sample, tmp_path):
    config = write_config(tmp_path, prepared_sample)
    assert main(["train", str(config)]) == 0
    run = tmp_path / "run"
    with (run / "train_metrics.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == [0, 50, 100]
    start, end = float(rows[0]["val/moment_distance"]), float(rows[-1]["val/moment_distance"])
    assert end < start - 0.05, (start, end)  # generated intensity statistics moved towards the real patches'
    assert float(rows[-1]["val/fake_std"]) > float(rows[0]["val/fake_std"])  # from a flat grey towards tissue texture
    assert sorted(path.name for path in (run / "epoch_tiles").glob("*.png")) == [f"epoch_{e:04d}.png" for e in range(3)]
    # 8 columns of 128 px cells; header, mask / generated z1 / generated z2 rows, label, real strip.
    assert read_image(run / "epoch_tiles" / "epoch_0002.png").shape == (34 + 3 * 132 + 4 + 26 + 136, 8 * 132 + 4)

    assert main(["infer", str(config)]) == 0
    out = run / "synthetic"
    with (out / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))
    assert len(manifest) == 6
    assert sorted(p.name for p in (out / "images").glob("*.png")) == sorted(p.name for p in (out / "masks").glob("*.png"))
    for row in manifest:
        assert row["mask"] == row["image"] and row["seed"] == "3" and row["checkpoint"].endswith("generator.keras")
        assert row["mask_source"] == "prior:blob" or row["mask_source"].startswith("prior:real:mdb")
        image, mask = read_image(out / "images" / row["image"]), read_image(out / "masks" / row["mask"])
        assert image.shape == mask.shape == (32, 32) and image.dtype == mask.dtype == np.uint8
        assert set(np.unique(mask)) == {0, 255}
    # The same seed draws the same masks again; real masks come from [dataset] train_dir in name order.
    real_config = write_config(tmp_path, prepared_sample, mask_source='"real"', output_dir='"./run/real"')
    assert main(["infer", str(real_config)]) == 0
    with (run / "real" / "manifest.csv").open(newline="") as handle:
        sources = [row["mask_source"] for row in csv.DictReader(handle)]
    _, names = load_masks(prepared_sample / "patches" / "train", 32)
    assert sources == [f"real:{name}" for name in names[:6]]


def test_config_errors_name_the_key(prepared_sample, tmp_path, caplog, log_text):
    config = write_config(tmp_path, prepared_sample, mask_source='"atlas"')
    assert main(["infer", str(config)]) == 2
    message = log_text()
    assert "[infer] mask_source" in message and "atlas" in message and str(config) in message
    caplog.clear()
    config = write_config(tmp_path, prepared_sample, generator="dcgan")  # a latent-only generator cannot take masks
    assert main(["train", str(config)]) == 2
    message = log_text()
    assert "[model] generator" in message and "'dcgan'" in message and "pix2pix_unet" in message

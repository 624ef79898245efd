"""SR pieces through their public entry points: tiling, the bicubic baseline, training, evaluate, infer."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from mammogan.cli import main
from mammogan.data.images import read_image
from mammogan.metrics.numpy_metrics import bicubic_upscale, psnr_np
from mammogan.models.sampling import make_runner
from mammogan.models.tiling import tiled_super_resolve
from mammogan.registry import GENERATORS

REPO = Path(__file__).resolve().parents[1]


def test_tiled_output_equals_whole_image_away_from_borders():
    keras.utils.set_random_seed(3)
    model = GENERATORS.get("srresnet")(scale=2, filters=8, blocks=1, global_skip="bicubic")
    # Non-zero tail so the network is not the identity-plus-bicubic it starts as.
    tail = model.get_layer("tail")
    tail.set_weights([np.random.default_rng(0).normal(0, 0.05, w.shape).astype("float32") for w in tail.get_weights()])
    runner = make_runner(model)
    image = np.random.default_rng(1).random((150, 190)).astype(np.float32)
    whole = runner(image[None, ..., None])[0, ..., 0]
    tiled = tiled_super_resolve(runner, image, 2, tile=96, overlap=48, batch=3)
    # Receptive-field radius ≈ 10 LR px (9x9 head, 3x3 convs, upsampler, 9x9 tail) < the 12 px zero-weight margin.
    border = 24
    difference = np.abs(tiled - whole)[border:-border, border:-border]
    assert difference.max() < 1e-4
    assert tiled.shape == whole.shape


@pytest.mark.parametrize("generator", ["srresnet", "edsr", "rrdb"])
@pytest.mark.parametrize("scale", [2, 4])
def test_untrained_residual_generators_are_exactly_bicubic(generator, scale):
    """Zero-initialised tails: every SR generator starts as the evaluation's bicubic baseline, so training only adds detail."""
    keras.utils.set_random_seed(0)
    model = GENERATORS.get(generator)(scale=scale, filters=8, blocks=1, global_skip="bicubic")
    image = np.random.default_rng(2).random((23, 31)).astype(np.float32)
    output = np.asarray(model(image[None, ..., None]))[0, ..., 0]
    assert output.shape == (23 * scale, 31 * scale)
    assert np.abs(output - bicubic_upscale(image, scale)).max() < 1e-5


def test_bicubic_baseline_matches_pillow_bicubic():
    """Our MATLAB-style bicubic upscaling agrees with Pillow's (also Keys a = -0.5, no antialias when enlarging)."""
    lr = read_image(REPO / "sample" / "mias" / "mdb001.pgm")[200:300, 150:250]
    ours = np.clip(bicubic_upscale(lr.astype(np.float32), 2), 0, 255)
    pillow = np.asarray(Image.fromarray(lr).resize((200, 200), Image.BICUBIC), dtype=np.float32)
    inner = (slice(4, -4), slice(4, -4))
    assert np.abs(ours[inner] - pillow[inner]).max() <= 1.5  # Pillow uses fixed-point weights and rounds to uint8
    assert psnr_np(pillow[inner], ours[inner], 255) > 55


@pytest.fixture(scope="module")
def sr_run(tmp_path_factory, prepared_sample):
    """A tiny SRGAN trained for a few steps on the prepared sample (shared by the tests below)."""
    root = tmp_path_factory.mktemp("sr")
    project = root / "projects" / "SR"
    project.mkdir(parents=True)
    config = project / "train_eval_infer.config"
    config.write_text(
        '[model]\ntask = "srgan"\ngenerator = "srresnet"\nscale = 2\nfilters = 16\nblocks = 2\nd_filters = 8\nd_blocks = 2\n'
        f'[dataset]\ntrain_dir = "{prepared_sample / "train"}"\nvalid_dir = "{prepared_sample / "valid"}"\n'
        f'test_dir = "{prepared_sample / "test"}"\n'
        'lr_subdir = "lr_x2"\npatch_size = 48\n'
        '[train]\nbatch_size = 8\npretrain_steps = 60\ngan_steps = 10\nsteps_per_epoch = 35\ng_learning_rate = 5e-4\nema_decay = 0\n'
        '[eval]\nmetrics = ["psnr", "ssim"]\ncomparison_crops = 1\n'
        f'[infer]\ninput_dir = "{prepared_sample / "test" / "lr_x2"}"\ntile_size = 64\ntile_overlap = 16\n')
    assert main(["train", str(config)]) == 0
    return project


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_training_lowers_validation_loss_and_writes_tiles(sr_run):
    rows = _rows(sr_run / "output" / "train_metrics.csv")
    psnr = [float(r["val/psnr"]) for r in rows]
    assert psnr[-1] > psnr[0]  # epoch 0 is the untrained generator (= bicubic)
    # Zero-initialised tail: the untrained generator is exactly its bicubic skip, i.e. the baseline.
    assert abs(float(rows[0]["val/psnr_gain"])) < 1e-3
    tiles = sorted((sr_run / "output" / "epoch_tiles").glob("epoch_*.png"))
    assert [t.name for t in tiles] == [f"epoch_{i:04d}.png" for i in range(len(rows))]
    assert (sr_run / "output" / "models" / "best" / "generator.keras").is_file()
    assert int(rows[-1]["step"]) == 70


def test_evaluate_reports_model_and_bicubic(sr_run):
    assert main(["evaluate", str(sr_run / "train_eval_infer.config")]) == 0
    summary = {r["metric"]: r for r in _rows(sr_run / "output" / "evaluation" / "evaluation.csv")}
    assert {"psnr", "ssim"} <= set(summary)
    gain = float(summary["psnr"]["gain_mean"])
    assert gain == pytest.approx(float(summary["psnr"]["model_mean"]) - float(summary["psnr"]["bicubic_mean"]), abs=1e-3)
    assert list((sr_run / "output" / "evaluation" / "comparisons").glob("*.png"))


def test_evaluator_bicubic_baseline_matches_an_independent_computation(sr_run, prepared_sample):
    """Per-image bicubic PSNR of the evaluator = Pillow bicubic upscaling scored by scikit-image."""
    from skimage.metrics import peak_signal_noise_ratio

    rows = _rows(sr_run / "output" / "evaluation" / "per_image.csv")
    test = prepared_sample / "test"
    assert sorted(r["image"] for r in rows) == sorted(p.stem for p in (test / "images").glob("*.png"))
    for row in rows:
        hr = read_image(test / "images" / f"{row['image']}.png")
        lr = Image.fromarray(read_image(test / "lr_x2" / f"{row['image']}.png"))
        pillow = np.asarray(lr.resize((hr.shape[1], hr.shape[0]), Image.BICUBIC))
        independent = peak_signal_noise_ratio(hr, pillow, data_range=255)
        # Pillow rounds its output to uint8 and uses fixed-point weights; the evaluator keeps float.
        assert float(row["psnr_bicubic"]) == pytest.approx(independent, abs=0.1)


def test_infer_keeps_bit_depth_and_scales(sr_run, prepared_sample):
    assert main(["infer", str(sr_run / "train_eval_infer.config")]) == 0
    outputs = sorted((sr_run / "output" / "inference").glob("*.png"))
    inputs = sorted((prepared_sample / "test" / "lr_x2").glob("*.png"))
    assert [p.name for p in outputs] == [p.name for p in inputs]
    for source, result in zip(inputs, outputs):
        lr, sr = read_image(source), read_image(result)
        assert sr.dtype == lr.dtype and sr.shape == (lr.shape[0] * 2, lr.shape[1] * 2)
        # The output is this image super-resolved: its 2x2 means give the input back closely.
        shrunk = sr.astype(np.float64).reshape(lr.shape[0], 2, lr.shape[1], 2).mean(axis=(1, 3))
        assert psnr_np(lr.astype(np.float64), shrunk, 255) > 35


def test_a_scale_the_saved_generator_was_not_built_with_is_refused(sr_run, tmp_path, caplog, log_text):
    """Editing [model] scale after training must not write images of the wrong size: evaluate and infer refuse it."""
    config = tmp_path / "train_eval_infer.config"
    text = (sr_run / "train_eval_infer.config").read_text().replace("scale = 2\n", "scale = 4\n")
    config.write_text(text.replace("[train]\n", f'[train]\noutput_dir = "{sr_run / "output"}"\n'))
    for command in ("infer", "evaluate"):
        caplog.clear()
        assert main([command, str(config)]) == 2
        message = log_text()
        assert f"{config}: [model] scale = 4" in message and "upscales ×2" in message and "set scale = 2" in message


def test_infer_keeps_12_bit_data_in_16_bit_files(sr_run, prepared_sample, tmp_path):
    """12-bit values stored in 16-bit PNGs: scaled by [dataset] data_range on the way in and out (as in training)."""
    source = sorted((prepared_sample / "test" / "lr_x2").glob("*.png"))[0]
    lr8 = read_image(source)
    lr12 = np.round(lr8.astype(np.float64) * 4095 / 255).astype(np.uint16)
    (tmp_path / "in").mkdir()
    Image.fromarray(lr12).save(tmp_path / "in" / "film.png")
    config = tmp_path / "train_eval_infer.config"
    text = (sr_run / "train_eval_infer.config").read_text().replace("[dataset]\n", "[dataset]\ndata_range = 4095.0\n")
    text = text.replace(f'input_dir = "{prepared_sample / "test" / "lr_x2"}"', f'input_dir = "{tmp_path / "in"}"\noutput_dir = "{tmp_path / "out"}"')
    config.write_text(text.replace("[train]\n", f'[train]\noutput_dir = "{sr_run / "output"}"\n'))  # the trained model
    assert main(["infer", str(config)]) == 0
    sr = read_image(tmp_path / "out" / "film.png")
    assert sr.dtype == np.uint16 and sr.shape == (lr12.shape[0] * 2, lr12.shape[1] * 2) and sr.max() <= 4095
    assert len(np.unique(sr)) > 256
    shrunk = sr.astype(np.float64).reshape(lr12.shape[0], 2, lr12.shape[1], 2).mean(axis=(1, 3))
    assert psnr_np(lr12.astype(np.float64), shrunk, 4095) > 35


def test_on_the_fly_degradation_equals_prepared_pairs(prepared_sample):
    """HR-only folders are degraded with the dataset's recorded degradation: identical to prepare's LR files."""
    from mammogan.data.sr_dataset import load_split

    train = prepared_sample / "train"
    prepared = load_split(train, 2, "lr_x2", 0)
    on_the_fly = load_split(train, 2, "", 0)
    assert prepared.names == on_the_fly.names
    for a, b in zip(prepared.lr, on_the_fly.lr):
        assert a.shape == b.shape and np.array_equal(a, b)

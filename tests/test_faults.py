"""Fault injection: damaged checkpoint state, runs that must not be overwritten, restarts that keep the old run,
and exact resume after a kill.

Each case goes through the `mammogan` entry point and checks the exit code, that the message names the
file/key, and that nothing already written was lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from mammogan.cli import main
from mammogan.data.images import read_image, write_png
from test_training import TINY_SR_TRAIN as TRAIN, sr_config



@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, prepared_sample) -> Path:
    """One tiny SR run trained to its end (checkpoints at steps 5 and 10); tests work on copies of it."""
    run = tmp_path_factory.mktemp("faults") / "run"
    assert main(["train", str(sr_config(run, prepared_sample, TRAIN))]) == 0
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    config = target / "train_eval_infer.config"
    config.write_text(config.read_text().replace(str(run), str(target)))
    return target


def snapshot(run: Path) -> dict[str, bytes]:
    """The bytes of everything a finished run must keep: metrics, best model, tiles."""
    output = run / "output"
    files = [output / "train_metrics.csv", *sorted((output / "models" / "best").iterdir()),
             *sorted((output / "epoch_tiles").iterdir())]
    return {str(path.relative_to(run)): path.read_bytes() for path in files}


@pytest.mark.parametrize("state", ["missing", "empty", "garbled", "stale"])
def test_damaged_checkpoint_state_file_still_resumes(finished_run, tmp_path, log_text, state):
    run = copy_of(finished_run, tmp_path)
    before = snapshot(run)
    state_file = run / "output" / "checkpoints" / "checkpoint"
    if state == "missing":
        state_file.unlink()
    elif state == "empty":
        state_file.write_text("")
    elif state == "garbled":
        state_file.write_text("model_checkpoint_path: {{{ not a proto")
    else:  # lists only a checkpoint that was deleted
        state_file.write_text('model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-3"\n')
    assert main(["train", str(run / "train_eval_infer.config")]) == 0
    text = log_text()
    assert f"Resumed from {run / 'output' / 'checkpoints' / 'ckpt-10'} (step 10" in text
    assert "rebuilt it from 2 checkpoint files" in text
    assert snapshot(run) == before  # resumed at its last step: metrics, best model and tiles untouched


def test_run_without_checkpoints_is_not_overwritten(finished_run, tmp_path, log_text):
    run = copy_of(finished_run, tmp_path)
    shutil.rmtree(run / "output" / "checkpoints")
    before = snapshot(run)
    config = run / "train_eval_infer.config"
    assert main(["train", str(config)]) == 2
    text = log_text()
    assert f"{run / 'output'} ([train] output_dir) holds a run with no checkpoint" in text and "--restart" in text
    assert snapshot(run) == before


def test_restart_keeps_the_previous_run_under_a_timestamped_name(finished_run, tmp_path, log_text):
    run = copy_of(finished_run, tmp_path)
    before = snapshot(run)
    assert main(["train", "--restart", str(run / "train_eval_infer.config")]) == 0
    kept = [p for p in run.iterdir() if p.name.startswith("output-")]
    assert len(kept) == 1 and f"kept as {kept[0]}" in log_text()
    moved = {name.replace("output/", f"{kept[0].name}/", 1): data for name, data in before.items()}
    assert {name: (run / name).read_bytes() for name in moved} == moved  # the old run, byte for byte
    assert (run / "output" / "checkpoints" / "ckpt-10.index").is_file()  # and a complete new one beside it


def test_unreadable_checkpoints_are_a_user_error(finished_run, tmp_path, log_text):
    run = copy_of(finished_run, tmp_path)
    for data in (run / "output" / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"truncated")
    before = snapshot(run)
    assert main(["train", str(run / "train_eval_infer.config")]) == 2
    assert f"{run / 'output' / 'checkpoints'}: no readable checkpoint; use --restart" in log_text()
    assert snapshot(run) == before


GAN_CONFIG = """
[model]
task = "dcgan"
generator = "dcgan"
discriminator = "dcgan"
image_size = 32
latent_dim = 16
filters = 8
d_filters = 8
[dataset]
train_dir = "{data}/patches/train"
valid_dir = "{data}/patches/valid"
[train]
batch_size = 8
gan_steps = {steps}
steps_per_epoch = 4
ema_decay = 0.9
diffaugment = ["translation", "cutout", "color"]
ada_target = 0.6
ada_interval = 1
ada_speed_images = 500.0
instance_noise = 0.1
"""


def exact_resume_config(kind: str, folder: Path, data: Path, steps: int) -> Path:
    """A run whose every step draws random numbers: SR (crops, then adversarial steps) or DCGAN (latents,
    DiffAugment with ADA, instance noise)."""
    if kind == "sr":
        return sr_config(folder, data, f"""
            batch_size = 4
            pretrain_steps = {steps // 2}
            gan_steps = {steps - steps // 2}
            steps_per_epoch = 4
            ema_decay = 0.9
            instance_noise = 0.1
            diffaugment = ["translation"]
        """)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train_eval_infer.config"
    path.write_text(GAN_CONFIG.format(data=data, steps=steps))
    return path


def final_weights(run: Path) -> list[np.ndarray]:
    model = keras.models.load_model(run / "output" / "models" / "final" / "generator.keras", compile=False)
    return [np.asarray(w) for w in model.weights]


@pytest.mark.parametrize("kind", ["sr", "dcgan"])
def test_a_killed_and_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(kind, prepared_sample, tmp_path, caplog, log_text):
    steps = 24
    clean = tmp_path / "clean"
    assert main(["train", str(exact_resume_config(kind, clean, prepared_sample, steps))]) == 0

    killed = tmp_path / "killed"
    config = exact_resume_config(kind, killed, prepared_sample, steps)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "mammogan", "train", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed / "output" / "checkpoints" / "ckpt-4.index"
    deadline = time.time() + 240
    while time.time() < deadline and not first.exists() and process.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch's steps, past the checkpoint
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it was killed"
    assert first.exists(), "killed before its first checkpoint: a rerun would train from scratch, not resume"
    assert not (killed / "output" / "models" / "final").exists()
    caplog.clear()
    assert main(["train", str(config)]) == 0  # resumes from the last checkpoint it finds
    assert f"Resumed from {killed / 'output' / 'checkpoints'}/ckpt-" in log_text()

    for clean_weight, resumed_weight in zip(final_weights(clean), final_weights(killed), strict=True):
        np.testing.assert_allclose(resumed_weight, clean_weight, rtol=0, atol=1e-6)


def split_copy(prepared_sample: Path, tmp_path: Path) -> Path:
    """The prepared training split copied, to be damaged (it holds several images, the test split only one)."""
    split = tmp_path / "split"
    shutil.copytree(prepared_sample / "train", split)
    return split


def test_evaluate_finishes_the_good_images_and_lists_the_bad_one(finished_run, prepared_sample, tmp_path, log_text):
    split = split_copy(prepared_sample, tmp_path)
    images = sorted((split / "images").glob("*.png"))
    images[1].write_bytes(b"not a png")
    config = tmp_path / "eval.config"
    text = (finished_run / "train_eval_infer.config").read_text() + f'[eval]\noutput_dir = "{tmp_path / "evaluation"}"\n'
    text = text.replace("[dataset]\n", f'[dataset]\ntest_dir = "{split}"\n', 1)
    config.write_text(text.replace("[train]\n", f'[train]\noutput_dir = "{finished_run / "output"}"\n', 1))
    assert main(["evaluate", str(config)]) == 2
    text = log_text()
    assert f"FAILED {images[1]}" in text and "1 test image(s) could not be evaluated" in text
    with (tmp_path / "evaluation" / "per_image.csv").open() as handle:
        evaluated = [line.split(",")[0] for line in handle.read().splitlines()[1:]]
    assert evaluated == [path.stem for path in images if path != images[1]]


def test_a_mask_of_another_size_is_refused_before_training_writes_anything(prepared_sample, tmp_path, log_text):
    split = split_copy(prepared_sample, tmp_path)
    mask = sorted((split / "masks").glob("*.png"))[0]
    image = read_image(mask)
    write_png(mask, image[:-4])
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, TRAIN)
    config.write_text(config.read_text().replace(f'train_dir = "{prepared_sample / "train"}"', f'train_dir = "{split}"'))
    assert main(["train", str(config)]) == 2
    height, width = image.shape
    assert f"{mask}: mask is {width}x{height - 4} but its image {split / 'images' / mask.name} is {width}x{height}" in log_text()
    assert not (run / "output").exists()


@pytest.mark.parametrize("command, section", [("train", "train"), ("evaluate", "eval"), ("infer", "infer")])
def test_an_output_folder_under_a_file_is_a_user_error_naming_the_key(command, section, finished_run, prepared_sample,
                                                                      tmp_path, log_text):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where a folder should be")
    target = blocker / "out"
    text = (finished_run / "train_eval_infer.config").read_text()
    text = text.replace("[dataset]\n", f'[dataset]\ntest_dir = "{prepared_sample / "test"}"\n', 1)
    text += f'[eval]\n\n[infer]\ninput_dir = "{prepared_sample / "test" / "lr_x2"}"\n'
    if section == "train":
        text = text.replace("[train]\n", f'[train]\noutput_dir = "{target}"\n', 1)
    else:
        text = text.replace("[train]\n", f'[train]\noutput_dir = "{finished_run / "output"}"\n', 1)
        text = text.replace(f"[{section}]\n", f'[{section}]\noutput_dir = "{target}"\n', 1)
    config = tmp_path / "train_eval_infer.config"
    config.write_text(text)
    assert main([command, str(config)]) == 2
    assert f"{config}: [{section}] output_dir = {target}: cannot write there ({blocker} is a file, not a folder)" in log_text()
    assert blocker.read_text() == "a file where a folder should be"


def test_a_default_generator_the_family_cannot_call_is_refused_before_training(prepared_sample, tmp_path, log_text):
    """task = "dcgan" without a generator line would build the default SRResNet and crash after writing the run."""
    config = exact_resume_config("dcgan", tmp_path / "run", prepared_sample, 4)
    config.write_text(config.read_text().replace('generator = "dcgan"\n', ""))
    assert main(["train", str(config)]) == 2
    text = log_text()
    assert "[model] generator = 'srresnet' does not fit [model] task = 'dcgan'" in text and "took its default" in text
    assert not (tmp_path / "run" / "output").exists()

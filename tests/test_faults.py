"""Fault injection: damaged checkpoint state, runs that must not be overwritten, restarts that keep the old run.

Each case goes through the `mammogan` entry point and checks the exit code, that the message names the
file/key, and that nothing already written was lost.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mammogan.cli import main
from test_training import sr_config

TRAIN = """
    batch_size = 4
    pretrain_steps = 10
    gan_steps = 0
    steps_per_epoch = 5
    ema_decay = 0
"""


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


def message(caplog) -> str:
    return " ".join(caplog.text.split())  # the CLI wraps long messages


@pytest.mark.parametrize("state", ["missing", "empty", "garbled", "stale"])
def test_damaged_checkpoint_state_file_still_resumes(finished_run, tmp_path, caplog, state):
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
    text = message(caplog)
    assert f"Resumed from {run / 'output' / 'checkpoints' / 'ckpt-10'} (step 10" in text
    assert "rebuilt it from 2 checkpoint files" in text
    assert snapshot(run) == before  # resumed at its last step: metrics, best model and tiles untouched


def test_run_without_checkpoints_is_not_overwritten(finished_run, tmp_path, caplog):
    run = copy_of(finished_run, tmp_path)
    shutil.rmtree(run / "output" / "checkpoints")
    before = snapshot(run)
    config = run / "train_eval_infer.config"
    assert main(["train", str(config)]) == 2
    text = message(caplog)
    assert f"{run / 'output'} ([train] output_dir) holds a run with no checkpoint" in text and "--restart" in text
    assert snapshot(run) == before


def test_restart_keeps_the_previous_run_under_a_timestamped_name(finished_run, tmp_path, caplog):
    run = copy_of(finished_run, tmp_path)
    before = snapshot(run)
    assert main(["train", "--restart", str(run / "train_eval_infer.config")]) == 0
    kept = [p for p in run.iterdir() if p.name.startswith("output-")]
    assert len(kept) == 1 and f"kept as {kept[0]}" in message(caplog)
    moved = {name.replace("output/", f"{kept[0].name}/", 1): data for name, data in before.items()}
    assert {name: (run / name).read_bytes() for name in moved} == moved  # the old run, byte for byte
    assert (run / "output" / "checkpoints" / "ckpt-10.index").is_file()  # and a complete new one beside it


def test_unreadable_checkpoints_are_a_user_error(finished_run, tmp_path, caplog):
    run = copy_of(finished_run, tmp_path)
    for data in (run / "output" / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"truncated")
    before = snapshot(run)
    assert main(["train", str(run / "train_eval_infer.config")]) == 2
    assert f"{run / 'output' / 'checkpoints'}: no readable checkpoint; use --restart" in message(caplog)
    assert snapshot(run) == before

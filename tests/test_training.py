"""The generic Trainer's robustness: kill and resume, corrupt checkpoints, NaN guard, replicas, stop file."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from mammogan.cli import main
from mammogan.models.io import load_model


MODEL = """
[model]
task = "srgan"
generator = "srresnet"
scale = 2
filters = 8
blocks = 1
"""
DISCRIMINATOR = "d_filters = 8\nd_blocks = 2\n"  # read only with an adversarial phase (gan_steps > 0)


# A run of two 5-step epochs without an adversarial phase: the smallest SR run that checkpoints twice.
TINY_SR_TRAIN = """
    batch_size = 4
    pretrain_steps = 10
    gan_steps = 0
    steps_per_epoch = 5
    ema_decay = 0
"""


def sr_config(folder: Path, data: Path, train: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train_eval_infer.config"
    discriminator = "" if "gan_steps = 0" in train else DISCRIMINATOR
    path.write_text(MODEL + discriminator + textwrap.dedent(f"""
        [dataset]
        train_dir = "{data / 'train'}"
        valid_dir = "{data / 'valid'}"
        lr_subdir = "lr_x2"
        patch_size = 32
        """) + "[train]\n" + textwrap.dedent(train))
    return path


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "output" / "train_metrics.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "mammogan", *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_sigkill_mid_run_then_resume_finishes_with_right_steps(prepared_sample, tmp_path):
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 40
        gan_steps = 20
        steps_per_epoch = 5
        ema_decay = 0.9
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, "-m", "mammogan", "train", str(config)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = run / "output" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline:
        if len(list(checkpoints.glob("ckpt-*.index"))) >= 2:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    killed_at = max(int(p.stem.split("-")[1]) for p in checkpoints.glob("ckpt-*.index"))
    assert killed_at < 60, "the run finished before it could be killed; make it longer"

    result = cli("train", str(config))
    assert result.returncode == 0, result.stderr
    assert "Resumed from" in result.stderr
    history = rows(run)
    assert int(history[-1]["step"]) == 60
    epochs = [int(r["epoch"]) for r in history]
    assert epochs == sorted(set(epochs)) == list(range(len(epochs)))  # no epoch logged twice or lost
    assert (run / "output" / "models" / "final" / "generator.keras").is_file()


def test_corrupt_latest_checkpoint_falls_back_to_previous(prepared_sample, tmp_path):
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 10
        gan_steps = 0
        steps_per_epoch = 5
        keep_checkpoints = 3
    """)
    assert main(["train", str(config)]) == 0
    checkpoints = run / "output" / "checkpoints"
    latest = sorted(checkpoints.glob("ckpt-10.data-*"))[0]
    latest.write_bytes(latest.read_bytes()[:100])  # a partial write
    config.write_text(config.read_text().replace("pretrain_steps = 10", "pretrain_steps = 15"))
    result = cli("train", str(config))
    assert result.returncode == 0, result.stderr
    assert "ckpt-10 is unreadable" in result.stderr and "Resumed from" in result.stderr and "ckpt-5" in result.stderr
    assert int(rows(run)[-1]["step"]) == 15


def test_nan_guard_stops_with_step_and_loss_and_keeps_checkpoints(prepared_sample, tmp_path):
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 200
        gan_steps = 0
        steps_per_epoch = 1
        optimizer = "sgd"
        beta_1 = 0.0
        g_learning_rate = 1e12
    """)
    result = cli("train", str(config))
    assert result.returncode == 2
    assert "Training diverged at step" in result.stderr and "loss pixel" in result.stderr
    assert "Traceback" not in result.stderr
    bad_step = int(result.stderr.split("Training diverged at step ")[1].split(":")[0])
    checkpoints = run / "output" / "checkpoints"
    assert bad_step >= 2 and (checkpoints / f"ckpt-{bad_step - 1}.index").is_file()
    assert not list(checkpoints.glob(f"ckpt-{bad_step}.*"))
    again = cli("train", str(config))  # resumes from the last good checkpoint, and stops the same way
    assert again.returncode == 2 and f"Resumed from {checkpoints / f'ckpt-{bad_step - 1}'}" in again.stderr
    assert "Training diverged at step" in again.stderr


def test_stop_file_ends_training_cleanly(prepared_sample, tmp_path):
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 50
        gan_steps = 0
        steps_per_epoch = 5
    """)
    (run / "output").mkdir(parents=True)
    (run / "output" / "STOP").touch()
    assert main(["train", str(config)]) == 0
    assert int(rows(run)[-1]["step"]) == 5
    assert (run / "output" / "models" / "final" / "generator.keras").is_file()


REPLICA_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from mammogan.config import load_config
from mammogan.train.trainer import Trainer

from mammogan.errors import ConfigError

try:
    Trainer(load_config(sys.argv[-1]))
except ConfigError as error:
    print("XLA_REFUSED", "[train] jit_compile" in str(error))
weights = {}
for path in sys.argv[1:-1]:
    config = load_config(path)
    trainer = Trainer(config)
    assert trainer.strategy.num_replicas_in_sync == (2 if config.train.strategy == "mirrored" else 1)
    trainer.fit(resume=False)
    model = keras.models.load_model(config.train.output_dir / "models" / "final" / "generator.keras", compile=False)
    initial = keras.models.load_model(config.train.output_dir / "models" / "initial" / "generator.keras", compile=False)
    weights[path] = [w - i for w, i in zip(model.get_weights(), initial.get_weights())]
one, *others = weights.values()
worst = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12))
            for other in others for a, b in zip(one, other) if np.any(a))
print("RELATIVE_DIFFERENCE", worst)
"""


def test_one_and_two_replicas_take_the_same_first_step(prepared_sample, tmp_path):
    """With SGD the first update is lr × gradient: a mirrored run on two logical CPUs must match one device.
    XLA over two replicas is refused up front (naming the key), not left to crash mid-run."""
    train = """
        batch_size = 8
        pretrain_steps = 1
        gan_steps = 0
        steps_per_epoch = 1
        optimizer = "sgd"
        beta_1 = 0.0
        g_learning_rate = 0.01
        ema_decay = 0
    """
    single = sr_config(tmp_path / "single", prepared_sample, train + 'strategy = "default"\n')
    mirrored = sr_config(tmp_path / "mirrored", prepared_sample, train + 'strategy = "mirrored"\n')
    mirrored_xla = sr_config(tmp_path / "mirrored_xla", prepared_sample, train + 'strategy = "mirrored"\njit_compile = true\n')
    script = tmp_path / "replicas.py"
    script.write_text(REPLICA_SCRIPT)
    result = subprocess.run([sys.executable, str(script), str(single), str(mirrored), str(mirrored_xla)], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "XLA_REFUSED True" in result.stdout
    difference = float(result.stdout.split("RELATIVE_DIFFERENCE")[1])
    assert difference < 1e-4


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multi_worker_two_local_processes(prepared_sample, tmp_path):
    """MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1: both finish; only the chief writes."""
    import json

    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 4
        gan_steps = 2
        steps_per_epoch = 3
        strategy = "multi_worker"
    """)
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": tf_config}
        processes.append(subprocess.Popen([sys.executable, "-m", "mammogan", "train", str(config)], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=400)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[1][-3000:] + outputs[0][-3000:]
    history = rows(run)
    assert int(history[-1]["step"]) == 6
    assert (run / "output" / "models" / "final" / "generator.keras").is_file()
    assert not (run / "output" / ".worker_checkpoints" / "1").exists()


def test_perceptual_imagenet_without_local_weights_fails_fast_with_instructions(prepared_sample, tmp_path):
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 2
        gan_steps = 2
        steps_per_epoch = 2
        perceptual_weights = "imagenet"
        loss_weights = { pixel = 1.0, adversarial = 1e-3, perceptual = 0.01 }
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_HOME": str(tmp_path / "empty_keras_home")}
    result = subprocess.run([sys.executable, "-m", "mammogan", "train", str(config)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2
    assert "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5" in result.stderr
    assert str(tmp_path / "empty_keras_home" / "models") in result.stderr.replace("\n", "")


def test_perceptual_loss_from_a_local_weights_file_and_mixed_precision(prepared_sample, tmp_path):
    """SRGAN phase 2 with a VGG19 perceptual term from a local file, in mixed_float16 with loss scaling."""
    import keras

    weights = tmp_path / "vgg19_notop.weights.h5"
    keras.utils.set_random_seed(0)
    keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3)).save_weights(weights)
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, f"""
        batch_size = 4
        pretrain_steps = 2
        gan_steps = 2
        steps_per_epoch = 2
        mixed_precision = true
        perceptual_weights = "{weights}"
        loss_weights = {{ pixel = 1.0, adversarial = 1e-3, perceptual = 1e-6 }}
    """)
    result = cli("train", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    history = rows(run)
    assert int(history[-1]["step"]) == 4
    assert all(math.isfinite(float(history[-1][k])) for k in ("gan/g", "gan/d"))


def test_unknown_loss_term_is_a_config_error(prepared_sample, tmp_path):
    config = sr_config(tmp_path / "run", prepared_sample, """
        loss_weights = { pixel = 1.0, perceptul = 0.1 }
    """)
    result = cli("train", str(config))
    assert result.returncode == 2 and "perceptul" in result.stderr and "loss_weights" in result.stderr


def test_early_stopping_ends_a_phase_and_the_next_starts_with_a_fresh_best(prepared_sample, tmp_path):
    """A generator that cannot learn stalls at once: pre-training stops early, GAN fine-tuning still runs.

    Its learning rate 1e-30 (0 is refused) moves no float32 weight: each update is far below the weights' last bit.
    """
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, """
        batch_size = 4
        pretrain_steps = 20
        gan_steps = 10
        steps_per_epoch = 5
        g_learning_rate = 1e-30
        early_stopping_patience = 1
    """)
    result = cli("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    assert [int(row["step"]) for row in rows(run)] == [0, 5, 25, 30]
    assert "Early stopping ends phase pretrain at step 5; the next phase starts at step 20" in result.stderr
    # the GAN phase's first epoch is its best so far even though it does not beat step 0
    assert result.stderr.count("best so far; saved models/best") == 2


def test_pretrained_generator_starts_the_run_from_its_weights_and_a_misfit_is_refused(prepared_sample, tmp_path):
    """An SRGAN fine-tune starts from a PSNR run's generator; a generator that cannot move keeps those weights exactly."""
    first = tmp_path / "first"
    assert cli("train", str(sr_config(first, prepared_sample, TINY_SR_TRAIN))).returncode == 0
    trained = first / "output" / "models" / "final" / "generator.keras"
    second = tmp_path / "second"
    config = sr_config(second, prepared_sample, TINY_SR_TRAIN.replace("pretrain_steps = 10", "pretrain_steps = 5")
                       + f'g_learning_rate = 1e-30\npretrained_generator = "{trained.as_posix()}"\n')
    result = cli("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    start = load_model(trained).get_weights()
    kept = load_model(second / "output" / "models" / "final" / "generator.keras").get_weights()
    assert len(start) == len(kept) and all(np.array_equal(a, b) for a, b in zip(start, kept))
    untrained = load_model(first / "output" / "models" / "initial" / "generator.keras").get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(start, untrained))  # the first run did move its weights

    misfit = sr_config(tmp_path / "misfit", prepared_sample, TINY_SR_TRAIN + f'pretrained_generator = "{trained.as_posix()}"\n')
    misfit.write_text(misfit.read_text().replace("filters = 8", "filters = 16"))
    result = cli("train", str(misfit))
    message = " ".join(result.stderr.split())  # the CLI wraps long errors at the terminal width
    assert result.returncode == 2 and "[train] pretrained_generator" in message and "different network" in message


def test_keep_best_false_writes_no_best_model_and_evaluate_uses_the_final_one(prepared_sample, tmp_path):
    run = tmp_path / "run"
    config = sr_config(run, prepared_sample, TINY_SR_TRAIN + "keep_best = false\n")
    result = cli("train", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (run / "output" / "models" / "best").exists() and "saved models/best" not in result.stderr
    assert (run / "output" / "models" / "final" / "generator.keras").is_file()
    config.write_text(config.read_text().replace('lr_subdir = "lr_x2"', f'lr_subdir = "lr_x2"\ntest_dir = "{prepared_sample / "test"}"'))
    result = cli("evaluate", str(config))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run / "output" / "evaluation" / "evaluation.csv").is_file()

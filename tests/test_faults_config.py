"""Config faults caught at load, before anything is written: values TensorFlow cannot take, networks a family cannot
call, split ratios that do not add up, and messages that say what is wrong; a closed stdout is no error.

Each case goes through the `mammogan` entry point: exit code 2 (0 for the closed pipe), a one-paragraph message
naming the file, section and key and what was expected, and no output folder.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from mammogan.cli import main

REPO = Path(__file__).resolve().parents[1]
SR = '[model]\ntask = "srgan"\n'
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


class _Messages(logging.Handler):
    """Collects what the CLI logs (the mammogan logger does not propagate to pytest's caplog)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logged() -> Callable[[], str]:
    """`logged()`: the CLI's messages so far, the paragraph wrapping undone."""
    handler = _Messages()
    logger = logging.getLogger("mammogan")
    logger.addHandler(handler)
    yield lambda: " ".join(" ".join(handler.lines).split())
    logger.removeHandler(handler)


def experiment(tmp_path: Path, text: str) -> Path:
    """A config in its own folder (its run would write ./output there); without a [model] section an SR one."""
    folder = tmp_path / "exp"
    folder.mkdir(exist_ok=True)
    path = folder / "train_eval_infer.config"
    path.write_text(text if "[model]" in text else SR + text)
    return path


def refused(command: str, path: Path, logged: Callable[[], str], *expected: str) -> str:
    """Run `command` on `path`: exit 2, the message names the file and says `expected`, nothing is written."""
    before = sorted(p.name for p in path.parent.iterdir())
    assert main([command, str(path)]) == 2
    message = logged()
    assert message.startswith(f"Error: {path}"), message
    for words in expected:
        assert words in message, message
    assert sorted(p.name for p in path.parent.iterdir()) == before  # no output folder, no log, no resolved.config
    return message


# --- 1. values refused at load --------------------------------------------------------------------------------

TOO_BIG = {
    "batch_size beyond int64": ("[train]\nbatch_size = 99999999999999999999\n", "[train] batch_size = 99999999999999999999"),
    "seed beyond 32 bits": ("[train]\nseed = 4294967296\n", "[train] seed = 4294967296"),
    "latent_dim beyond 32 bits": ('[model]\ntask = "dcgan"\nlatent_dim = 2147483648\n', "[model] latent_dim = 2147483648"),
}


@pytest.mark.parametrize("text, where", TOO_BIG.values(), ids=TOO_BIG.keys())
def test_integers_tensorflow_cannot_hold_are_refused(tmp_path, logged, text, where):
    refused("train", experiment(tmp_path, text), logged, where, "and at most 2147483647 (TensorFlow holds sizes, steps and seeds as 32-bit")


NUMBERS = {
    "g_learning_rate 0": ("[train]\ng_learning_rate = 0\n", "[train] g_learning_rate = 0: expected a number > 0.0."),
    "g_learning_rate inf": ("[train]\ng_learning_rate = inf\n", "[train] g_learning_rate = inf: expected a number > 0.0, not inf."),
    "d_learning_rate 0": ("[train]\nd_learning_rate = 0.0\n", "[train] d_learning_rate = 0.0: expected a number > 0.0."),
    "d_learning_rate inf": ("[train]\nd_learning_rate = inf\n", "[train] d_learning_rate = inf: expected a number > 0.0, not inf."),
    "epsilon 0": ("[train]\nepsilon = 0\n", "[train] epsilon = 0: expected a number > 0.0."),
    "lr_decay_factor 0": ('[train]\nlr_schedule = "piecewise"\nlr_decay_steps = [10]\nlr_decay_factor = 0\n',
                          "[train] lr_decay_factor = 0: expected a number in (0.0, 1.0]."),
    "lesion_weight inf": ("[train]\nlesion_weight = inf\n", "[train] lesion_weight = inf: expected a number >= 1.0, not inf."),
    "a loss weight inf": ("[train]\nloss_weights = {pixel = 1.0, adversarial = inf}\n",
                          "entry 'adversarial': expected a number >= 0.0, not inf."),
    "utility learning_rate 0": ('[model]\ntask = "utility"\n[utility]\nlearning_rate = 0\n',
                                "[utility] learning_rate = 0: expected a number > 0.0."),
}


@pytest.mark.parametrize("text, expected", NUMBERS.values(), ids=NUMBERS.keys())
def test_zero_or_infinite_rates_and_weights_are_refused(tmp_path, logged, text, expected):
    refused("train", experiment(tmp_path, text), logged, expected)


NETWORKS = {
    "latent generator for SR": ('[model]\ntask = "srgan"\ngenerator = "dcgan"\n', (
        "[model] generator = 'dcgan' does not fit [model] task = 'srgan': family 'srgan' needs a generator that takes "
        "an LR image, but generator 'dcgan' takes a latent vector. Generators that fit: 'srresnet', 'edsr', 'rrdb'.",)),
    "pair discriminator for a DCGAN": ('[model]\ntask = "dcgan"\ngenerator = "dcgan"\ndiscriminator = "patchgan"\n', (
        "[model] discriminator = 'patchgan' does not fit [model] task = 'dcgan'",
        "Discriminators that fit: 'vgg', 'unet', 'dcgan', 'patchgan70'.")),
    "unconditional generator for a conditional GAN": ('[model]\ntask = "conditional"\ngenerator = "dcgan"\n', (
        "takes [latent, class], but generator 'dcgan' takes a latent vector", "Generators that fit: 'conditional_dcgan', 'conditional_stylegan2'.")),
    "SR generator for mask-to-image": ('[model]\ntask = "mask_to_image"\ngenerator = "srresnet"\n', (
        "[model] generator = 'srresnet' does not fit [model] task = 'mask_to_image'", "Generators that fit: 'pix2pix_unet'.")),
}


@pytest.mark.parametrize("text, expected", NETWORKS.values(), ids=NETWORKS.keys())
def test_a_network_the_family_cannot_call_is_refused_with_the_ones_that_fit(tmp_path, logged, text, expected):
    refused("train", experiment(tmp_path, text), logged, *expected)


def test_a_default_network_is_not_refused_for_evaluate_and_infer(tmp_path, capsys):
    """Configs that only evaluate or sample a trained GAN need not name its generator (the saved model is loaded);
    their resolved config comments the default out, so that it loads back."""
    assert main(["config", "show", str(experiment(tmp_path, '[model]\ntask = "dcgan"\n'))]) == 0
    resolved = capsys.readouterr().out
    assert '\n# generator = "srresnet"\n' in resolved and '\ndiscriminator = "vgg"\n' in resolved
    (tmp_path / "resolved.config").write_text(resolved)
    assert main(["config", "show", str(tmp_path / "resolved.config")]) == 0


PREPARE = '[prepare]\nkind = "images"\ninput_dir = "in"\noutput_dir = "./data"\nsplit_ratios = {}\n'
RATIOS = {
    "all zero": ("[0, 0, 0]", "these add up to 0."),
    "four entries": ("[0.5, 0.2, 0.2, 0.1]", "= [0.5, 0.2, 0.2, 0.1]: expected 3 fractions (train, valid, test) adding up to 1."),
    "not normalised": ("[0.5, 0.3, 0.3]", "these add up to 1.1."),
    "counts": ("[2, 1, 1]", "adding up to 1; item 0 (2): expected a number in [0.0, 1.0]."),
}


@pytest.mark.parametrize("ratios, expected", RATIOS.values(), ids=RATIOS.keys())
def test_split_ratios_must_be_three_fractions_adding_up_to_one(tmp_path, logged, ratios, expected):
    (tmp_path / "in").mkdir()
    config = tmp_path / "prepare.config"
    config.write_text(PREPARE.format(ratios))
    refused("prepare", config, logged, f"[prepare] split_ratios = {ratios}", expected)


def test_split_ratios_off_by_rounding_only_are_taken(tmp_path):
    config = tmp_path / "prepare.config"
    config.write_text(PREPARE.format("[0.7, 0.2, 0.1]"))  # 0.9999999999999999 in binary floating point
    assert main(["config", "show", str(config)]) == 0


# --- 2. a closed stdout ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments", [["config", "keys"],
                                       ["config", "show", str(REPO / "projects/SRGAN/MIAS-x2/train_eval_infer.config")]])
def test_a_reader_that_stops_early_is_no_error(arguments):
    process = subprocess.Popen([sys.executable, "-m", "mammogan", *arguments], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=ENV)
    process.stdout.close()  # closed before the command writes: every write meets a broken pipe
    errors = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, errors
    assert errors == ""


def test_config_keys_piped_into_head():
    result = subprocess.run(f"{sys.executable} -m mammogan config keys | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                            executable="/bin/bash", capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 0 and result.stdout == "### `[prepare]`\n" and result.stderr == "", result.stderr


# --- 3. messages that say what is wrong ---------------------------------------------------------------------------

UNKNOWN = {
    "loss": ('[train]\npixel_loss = "l3"\n', ("unknown loss 'l3'.", "Registered losses: charbonnier, l1, mse.")),
    "adversarial loss": ('[train]\nadversarial_loss = "hinged"\n', (
        "unknown adversarial loss 'hinged'. Did you mean 'hinge'?", "Registered adversarial losses: hinge,")),
    "family": ('[model]\ntask = "srgann"\n', ("unknown family 'srgann'. Did you mean 'srgan'?", "Registered families: ")),
}


@pytest.mark.parametrize("text, expected", UNKNOWN.values(), ids=UNKNOWN.keys())
def test_unknown_names_list_the_registered_ones_in_proper_plurals(tmp_path, logged, text, expected):
    message = refused("train", experiment(tmp_path, text), logged, *expected)
    assert "losss" not in message and "familys" not in message


TWICE = {
    "key": ('[model]\ntask = "srgan"\n[train]\nbatch_size = 4\nseed = 1\nbatch_size = 8\n',
            "[train] batch_size is set twice (lines 4 and 6); keep one."),
    "section": ('[train]\nseed = 1\n[model]\ntask = "srgan"\n[train]\nbatch_size = 2\n',
                "section [train] is declared twice (lines 1 and 5); keep one."),
}


@pytest.mark.parametrize("text, expected", TWICE.values(), ids=TWICE.keys())
def test_a_key_or_section_written_twice_is_named_with_its_lines(tmp_path, logged, text, expected):
    config = experiment(tmp_path, text)
    assert refused("train", config, logged, expected) == f"Error: {config}: {expected}"


def test_a_folder_given_as_the_config_lists_the_configs_inside(tmp_path, logged):
    projects = tmp_path / "projects"
    for name in ("A", "B"):
        (projects / name).mkdir(parents=True)
        (projects / name / "train_eval_infer.config").write_text(SR)
    assert main(["train", str(projects)]) == 2
    assert logged() == (f"Error: {projects} is a folder; give the train_eval_infer.config file inside it. "
                        "Config files there: A/train_eval_infer.config, B/train_eval_infer.config.")
    assert sorted(p.name for p in projects.iterdir()) == ["A", "B"]


def test_an_empty_folder_given_as_the_config_says_so(tmp_path, logged):
    assert main(["config", "show", str(tmp_path)]) == 2
    assert logged() == (f"Error: {tmp_path} is a folder; give the train_eval_infer.config file inside it. "
                        "It holds no .config file, nor do its subfolders.")


def test_a_file_given_for_a_split_folder_is_refused_at_load(tmp_path, logged):
    data = tmp_path / "data"
    data.mkdir()
    (data / "images.csv").write_text("image\n")
    config = experiment(tmp_path, f'[dataset]\ntrain_dir = "{data / "images.csv"}"\n')
    refused("train", config, logged, f"{config}: [dataset] train_dir = {data / 'images.csv'} is a file; expected a "
            "folder with images/ (and masks/).")


def test_a_folder_given_for_a_file_is_refused_at_load(tmp_path, logged):
    (tmp_path / "Info.txt").mkdir()
    (tmp_path / "in").mkdir()
    config = tmp_path / "prepare.config"
    config.write_text('[prepare]\nkind = "mias"\ninput_dir = "in"\ninfo_file = "Info.txt"\noutput_dir = "./data"\n')
    refused("prepare", config, logged, f"[prepare] info_file = {tmp_path / 'Info.txt'} is a folder; expected a file.")


def test_a_default_output_folder_that_is_a_file_is_refused_as_the_default(tmp_path, logged):
    config = experiment(tmp_path, "[train]\nbatch_size = 2\n")
    (config.parent / "output").write_text("not a folder")
    refused("train", config, logged, f"[train] output_dir = {config.parent / 'output'} is a file; expected a folder "
            "(the default).")


def test_output_folders_need_not_exist_yet(tmp_path):
    config = experiment(tmp_path, '[train]\noutput_dir = "./not/yet"\n')
    assert main(["config", "show", str(config)]) == 0
    assert not (config.parent / "not").exists()


def test_a_refused_config_prints_one_paragraph_without_traceback(tmp_path):
    config = experiment(tmp_path, "[train]\nbatch_size = 4\nbatch_size = 8\n")
    result = subprocess.run([sys.executable, "-m", "mammogan", "train", str(config)], capture_output=True, text=True,
                            timeout=120, env=ENV)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert " ".join(result.stderr.split()) == f"Error: {config}: [train] batch_size is set twice (lines 4 and 5); keep one."
    assert not (config.parent / "output").exists()

"""The TOML config API: every error names file/section/key, paths resolve against the config folder,
the resolved config round-trips, registries reject unknown names with the list of known ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mammogan.cli import main
from mammogan.config import load_config, render_config, write_resolved_config
from mammogan.config.reference import reference_markdown
from mammogan.config.schema import SECTIONS
from mammogan.config.types import ListOf, Name
from mammogan.errors import ConfigError
from mammogan.registry import REGISTRIES

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str, name: str = "train_eval_infer.config") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_unknown_key_names_file_section_key_and_suggestion(tmp_path):
    path = write(tmp_path, "[train]\nbatchsize = 4\n")
    message = error_of(path)
    assert str(path) in message
    assert "[train]" in message and "'batchsize'" in message
    assert "Did you mean `batch_size`?" in message


def test_unknown_section_suggests_closest(tmp_path):
    message = error_of(write(tmp_path, "[trian]\nseed = 1\n"))
    assert "unknown section [trian]" in message and "Did you mean `train`?" in message


def test_wrong_type_names_value_and_expectation(tmp_path):
    message = error_of(write(tmp_path, '[train]\nbatch_size = "eight"\n'))
    assert "[train] batch_size = 'eight'" in message
    assert "expected an integer >= 1" in message


def test_out_of_range_value(tmp_path):
    message = error_of(write(tmp_path, "[train]\nema_decay = 1.5\n"))
    assert "[train] ema_decay = 1.5" in message and "in [0.0, 1.0]" in message


@pytest.mark.parametrize("text, expected", [("scale = 3", "[model] scale = 3: expected one of 2, 4, 8"),
                                            ("image_size = 48", "[model] image_size = 48: expected one of 16, 32, 64")])
def test_sizes_the_models_cannot_build_are_rejected_up_front(tmp_path, text, expected):
    assert expected in error_of(write(tmp_path, f"[model]\n{text}\n"))


def test_bool_written_as_string_is_rejected_not_defaulted(tmp_path):
    message = error_of(write(tmp_path, '[train]\nmixed_precision = "yes"\n'))
    assert "mixed_precision" in message and "true or false" in message


def test_invalid_toml_reports_file_and_position(tmp_path):
    path = write(tmp_path, "[train\nbatch_size = 4\n")
    message = error_of(path)
    assert str(path) in message and "not valid TOML" in message and "line 1" in message


def test_choice_value_lists_choices(tmp_path):
    message = error_of(write(tmp_path, '[train]\nstrategy = "tpu"\n'))
    assert "'default', 'mirrored', 'multi_worker'" in message


def test_unknown_registry_name_lists_registered(tmp_path):
    message = error_of(write(tmp_path, '[model]\ngenerator = "srresnett"\n'))
    assert "[model] generator" in message
    assert "Did you mean 'srresnet'?" in message
    assert "rrdb" in message and "srresnet" in message


def test_list_item_errors_name_the_item(tmp_path):
    message = error_of(write(tmp_path, '[prepare]\nsr_scales = [2, "four"]\n'))
    assert "[prepare] sr_scales" in message and "item 1" in message


def test_relative_paths_resolve_against_config_folder_not_cwd(tmp_path, monkeypatch):
    folder = tmp_path / "projects" / "exp"
    folder.mkdir(parents=True)
    path = write(folder, '[dataset]\ntrain_dir = "../../data/train"\n[train]\noutput_dir = "./out"\n')
    monkeypatch.chdir(tmp_path.parent)
    config = load_config(path)
    assert config.dataset.train_dir == (tmp_path / "data" / "train").resolve()
    assert config.train.output_dir == folder / "out"
    assert config.eval.output_dir == folder / "output" / "evaluation"  # defaults resolve there too


def test_resolved_config_round_trips(tmp_path):
    source = REPO / "projects" / "SRGAN" / "MIAS-x2" / "train_eval_infer.config"
    config = load_config(source)
    written = write_resolved_config(config, tmp_path / "run")
    again = load_config(written)
    assert again.as_dict() == config.as_dict()
    assert render_config(again).splitlines()[2:] == render_config(config).splitlines()[2:]


def _registered_names(value_type, value):
    """(registry kind, name) pairs a default value refers to."""
    if isinstance(value_type, Name):
        return [(value_type.registry, value)]
    if isinstance(value_type, ListOf):
        return [pair for item in value for pair in _registered_names(value_type.item, item)]
    return []


def test_every_default_is_valid_and_every_key_documented():
    for section in SECTIONS.values():
        for key in section.keys:
            assert key.doc.strip().endswith((".", ")")), f"[{section.name}] {key.name} lacks a one-line description"
            if key.default is not None:
                for kind, name in _registered_names(key.type, key.default):
                    assert name in REGISTRIES[kind], f"default {name!r} of [{section.name}] {key.name} is not registered"


def test_reference_is_generated_from_schema():
    reference = reference_markdown()
    for section in SECTIONS.values():
        assert f"### `[{section.name}]`" in reference
        for key in section.keys:
            assert f"| `{key.name}` |" in reference
    page = (REPO / "docs" / "config.md").read_text()
    assert reference.strip() in page, (
        "docs/config.md is stale: regenerate it with `bash scripts/update_config_reference.sh` "
        "(it writes the output of `python -m mammogan config keys` below the page's intro)")


def test_cli_user_error_is_one_paragraph_and_exit_code_2(tmp_path):
    path = write(tmp_path, "[train]\nbatchsize = 4\n")
    result = subprocess.run([sys.executable, "-m", "mammogan", "config", "show", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "Did you mean `batch_size`?" in result.stderr


def test_cli_debug_shows_traceback(tmp_path):
    path = write(tmp_path, "[train]\nbatchsize = 4\n")
    result = subprocess.run([sys.executable, "-m", "mammogan", "--debug", "config", "show", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" in result.stderr and "ConfigError" in result.stderr


def test_cli_config_show_prints_effective_values(tmp_path, capsys):
    path = write(tmp_path, "[train]\nbatch_size = 3\n")
    assert main(["config", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert "batch_size = 3" in out and "pretrain_steps = 1000" in out

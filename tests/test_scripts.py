"""The shell scripts users run: generated from one template per step, .sh and .bat in step, usable from any folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TWINS = ["run_demo", "run_tests", "scripts/setup_env", "1.prepare"]


def steps(path: Path) -> list[str]:
    """What a script runs, in order, written the same for sh and cmd: project steps, mammogan commands, pytest."""
    text = path.read_text(encoding="utf-8").replace("\\", "/").replace("\r\n", "\n")
    text = re.sub(r"\.venv/(bin/python|Scripts/python\.exe)", "PY", text)
    found = []
    for line in text.splitlines():
        if line.lstrip().startswith(("#", "rem ")):
            continue
        line = re.sub(r'echo [^&|)]*|"[^"]*"', " ", line)  # messages and quoted paths name no step
        for match in re.finditer(r"(projects/\S+?/\d\.\w+|1\.prepare|setup_env)\.(?:sh|bat)(?: ([\w./-]+))?|-m (mammogan \w+|pytest|pip install)|(scripts/\w+\.py)",
                                 line):
            step = " ".join(part for part in match.groups() if part)
            if not found or found[-1] != step:  # cmd's if/else branches repeat what one sh loop does
                found.append(step)
    return found


def test_numbered_scripts_are_the_template():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "experiment_scripts.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    folders = [folder for folder in REPO.glob("projects/*/*/") if (folder / "train_eval_infer.config").is_file()]
    assert len(folders) >= 19  # the loop below checks something
    for folder in folders:
        assert {p.stem for p in folder.glob("*.sh")} == {p.stem for p in folder.glob("*.bat")} >= {"1.train", "2.evaluate"}


@pytest.mark.parametrize("name", TWINS)
def test_sh_and_bat_run_the_same_steps(name):
    sh, bat = steps(REPO / f"{name}.sh"), steps(REPO / f"{name}.bat")
    assert sh and sh == bat


def test_steps_reader_sees_the_demo():
    assert steps(REPO / "run_demo.sh")[:3] == ["setup_env requirements.txt", "1.prepare dataset/MIAS-sample.config",
                                               "mammogan augment"]


def test_prepare_script_reads_a_relative_config_from_the_callers_folder(tmp_path):
    sample = REPO / "sample" / "mias"
    (tmp_path / "prep.config").write_text(f'[prepare]\nkind = "mias"\ninput_dir = "{sample}"\n'
                                          f'info_file = "{sample / "Info.txt"}"\noutput_dir = "./prepared"\n'
                                          'bit_depth = 8\nsr_scales = [2]\n')
    result = subprocess.run(["sh", str(REPO / "1.prepare.sh"), "prep.config"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "prepared").glob("*/images/*.png"))) == 12


def test_a_numbered_script_without_a_venv_says_what_to_do(tmp_path):
    """A copy of an experiment in a tree with no .venv, run with a python that has no mammogan."""
    folder = tmp_path / "projects" / "SRGAN" / "Copy"
    shutil.copytree(REPO / "projects" / "SRGAN" / "MIAS-x2", folder, ignore=shutil.ignore_patterns("output"))
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python3").symlink_to(shutil.which("python3", path="/usr/bin:/usr/local/bin") or sys.executable)
    if subprocess.run([str(bare / "python3"), "-c", "import mammogan"], env=env, capture_output=True).returncode == 0:
        pytest.skip("the system python3 has mammogan installed")
    env["PATH"] = f"{bare}:/usr/bin:/bin"
    result = subprocess.run(["sh", str(folder / "1.train.sh")], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "No .venv in the repository and no mammogan" in result.stderr and "scripts/setup_env.sh" in result.stderr

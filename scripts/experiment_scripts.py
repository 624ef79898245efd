"""The numbered scripts of every experiment folder and the top-level ones, written from one template per shell.

    python scripts/experiment_scripts.py           # rewrite every script that differs from its template
    python scripts/experiment_scripts.py --check   # list the ones that differ; exit 1 if any (tests run this)
    python scripts/experiment_scripts.py --new projects/<Model>/<Experiment>   # add 1.train, 2.evaluate, 3.infer

The .sh and .bat of a step are made from the same table, so they cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = {"1.train": ("train", "Train"), "2.evaluate": ("evaluate", "Evaluate"), "3.infer": ("infer", "Run inference of")}
SETUP_SH = "scripts/setup_env.sh"
SETUP_BAT = r"scripts\setup_env.bat"

STEP_SH = """#!/usr/bin/env sh
# {what} this experiment with ./train_eval_infer.config (works from any folder; extra arguments go to
# `mammogan {command}`, e.g. --restart for 1.train).
cd "$(dirname "$0")" || exit 1
PY=../../../.venv/bin/python
if [ ! -x "$PY" ]; then
  PY=python3
  "$PY" -c "import mammogan" 2>/dev/null || {{ echo "No .venv in the repository and no mammogan for $PY: run {setup_sh} there first." >&2; exit 1; }}
fi
exec "$PY" -m mammogan {command} ./train_eval_infer.config "$@"
"""

STEP_BAT = """@echo off
rem {what} this experiment with .\\train_eval_infer.config (works from any folder; extra arguments go to
rem `mammogan {command}`, e.g. --restart for 1.train).
cd /d "%~dp0"
set PY=..\\..\\..\\.venv\\Scripts\\python.exe
if not exist "%PY%" (
  python -c "import mammogan" 2>nul || (echo No .venv in the repository and no mammogan for python: run {setup_bat} there first. 1>&2 & exit /b 1)
  set PY=python
)
"%PY%" -m mammogan {command} .\\train_eval_infer.config %*
exit /b %ERRORLEVEL%
"""

PREPARE_SH = """#!/usr/bin/env sh
# Prepare datasets: DICOM/PGM/PNG → cropped, oriented PNGs, masks, SR pairs, GAN patches, splits.
# Usage: ./1.prepare.sh [CONFIG ...]   (relative paths are read from the folder you run it in;
# default: every dataset/*.config of the repository)
ROOT=$(cd "$(dirname "$0")" && pwd) || exit 1
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  PY=python3
  "$PY" -c "import mammogan" 2>/dev/null || { echo "No .venv in $ROOT and no mammogan for $PY: run $ROOT/scripts/setup_env.sh first." >&2; exit 1; }
fi
[ "$#" -gt 0 ] || set -- "$ROOT"/dataset/*.config
status=0
for config in "$@"; do
  "$PY" -m mammogan prepare "$config" || status=$?
done
exit $status
"""

PREPARE_BAT = """@echo off
rem Prepare datasets: DICOM/PGM/PNG -> cropped, oriented PNGs, masks, SR pairs, GAN patches, splits.
rem Usage: 1.prepare.bat [CONFIG ...]   (relative paths are read from the folder you run it in;
rem default: every dataset\\*.config of the repository)
set ROOT=%~dp0
set PY=%ROOT%.venv\\Scripts\\python.exe
if not exist "%PY%" (
  python -c "import mammogan" 2>nul || (echo No .venv in %ROOT% and no mammogan for python: run %ROOT%scripts\\setup_env.bat first. 1>&2 & exit /b 1)
  set PY=python
)
set STATUS=0
if "%~1"=="" (
  for %%c in ("%ROOT%dataset\\*.config") do ("%PY%" -m mammogan prepare "%%~fc" || set STATUS=1)
) else (
  for %%c in (%*) do ("%PY%" -m mammogan prepare "%%~fc" || set STATUS=1)
)
exit /b %STATUS%
"""


def expected() -> dict[Path, str]:
    """Every generated script and its text: the numbered scripts each experiment folder has, and 1.prepare."""
    scripts = {REPO / "1.prepare.sh": PREPARE_SH, REPO / "1.prepare.bat": PREPARE_BAT}
    for config in sorted(REPO.glob("projects/*/*/train_eval_infer.config")):
        for step in STEPS:
            if (config.parent / f"{step}.sh").exists() or (config.parent / f"{step}.bat").exists():
                scripts.update(step_scripts(config.parent, step))
    return scripts


def step_scripts(folder: Path, step: str) -> dict[Path, str]:
    command, what = STEPS[step]
    fields = dict(command=command, what=what, setup_sh=SETUP_SH, setup_bat=SETUP_BAT)
    return {folder / f"{step}.sh": STEP_SH.format(**fields), folder / f"{step}.bat": STEP_BAT.format(**fields).replace("\n", "\r\n")}


def differing(scripts: dict[Path, str]) -> list[Path]:
    return [path for path, text in scripts.items() if not path.is_file() or path.read_bytes() != text.encode("utf-8")]


def write(scripts: dict[Path, str]) -> None:
    for path in differing(scripts):
        path.write_bytes(scripts[path].encode("utf-8"))
        if path.suffix == ".sh":
            path.chmod(0o755)
        print(f"wrote {path.relative_to(REPO)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list scripts that differ from their template; exit 1 if any")
    parser.add_argument("--new", type=Path, help="an experiment folder (with train_eval_infer.config) to add the three scripts to")
    args = parser.parse_args(argv)
    if args.new is not None:
        folder = args.new.resolve()
        if not (folder / "train_eval_infer.config").is_file():
            parser.error(f"{folder}: no train_eval_infer.config there")
        write({path: text for step in STEPS for path, text in step_scripts(folder, step).items()})
        return 0
    scripts = expected()
    if args.check:
        stale = differing(scripts)
        for path in stale:
            print(f"differs from its template: {path.relative_to(REPO)} (run python scripts/experiment_scripts.py)")
        return 1 if stale else 0
    write(scripts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

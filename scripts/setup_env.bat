@echo off
rem Create (or reuse) .venv at the repository root and install MammoGAN with its pinned dependencies (Windows).
rem Usage: scripts\setup_env.bat [requirements file]   (default: requirements.txt; PYTHON picks the interpreter)
setlocal
cd /d "%~dp0.."
set REQUIREMENTS=%~1
if "%REQUIREMENTS%"=="" set REQUIREMENTS=requirements.txt
if "%PYTHON%"=="" set PYTHON=python
if not exist .venv\Scripts\python.exe (
  echo Creating .venv with %PYTHON%
  "%PYTHON%" -m venv .venv || (echo Could not create .venv with %PYTHON%: install Python 3.10+ or set PYTHON. 1>&2 & exit /b 1)
)
.venv\Scripts\python.exe -m pip install --quiet --upgrade pip || exit /b 1
.venv\Scripts\python.exe -m pip install --quiet -r "%REQUIREMENTS%" || exit /b 1
.venv\Scripts\python.exe -m pip install --quiet --no-deps -e . || exit /b 1

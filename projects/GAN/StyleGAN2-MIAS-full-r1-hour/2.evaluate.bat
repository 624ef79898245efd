@echo off
rem Evaluate this experiment with .\train_eval_infer.config (works from any folder; extra arguments go to
rem `mammogan evaluate`, e.g. --restart for 1.train).
cd /d "%~dp0"
set PY=..\..\..\.venv\Scripts\python.exe
if not exist "%PY%" (
  python -c "import mammogan" 2>nul || (echo No .venv in the repository and no mammogan for python: run scripts\setup_env.bat there first. 1>&2 & exit /b 1)
  set PY=python
)
"%PY%" -m mammogan evaluate .\train_eval_infer.config %*
exit /b %ERRORLEVEL%

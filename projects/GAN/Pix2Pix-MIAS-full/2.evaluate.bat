@echo off
rem evaluate this experiment with ./train_eval_infer.config (works from any folder).
cd /d "%~dp0"
set PY=..\..\..\.venv\Scripts\python.exe
if not exist "%PY%" set PY=python
"%PY%" -m mammogan evaluate ./train_eval_infer.config %*

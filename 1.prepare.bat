@echo off
rem Prepare datasets (default: every dataset\*.config).
cd /d "%~dp0"
set PY=.venv\Scripts\python.exe
if not exist "%PY%" set PY=python
set STATUS=0
if "%~1"=="" (
  for %%c in (dataset\*.config) do ("%PY%" -m mammogan prepare "%%c" || set STATUS=1)
) else (
  for %%c in (%*) do ("%PY%" -m mammogan prepare "%%c" || set STATUS=1)
)
exit /b %STATUS%

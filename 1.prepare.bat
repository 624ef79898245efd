@echo off
rem Prepare datasets: DICOM/PGM/PNG -> cropped, oriented PNGs, masks, SR pairs, GAN patches, splits.
rem Usage: 1.prepare.bat [CONFIG ...]   (relative paths are read from the folder you run it in;
rem default: every dataset\*.config of the repository)
set ROOT=%~dp0
set PY=%ROOT%.venv\Scripts\python.exe
if not exist "%PY%" (
  python -c "import mammogan" 2>nul || (echo No .venv in %ROOT% and no mammogan for python: run %ROOT%scripts\setup_env.bat first. 1>&2 & exit /b 1)
  set PY=python
)
set STATUS=0
if "%~1"=="" (
  for %%c in ("%ROOT%dataset\*.config") do ("%PY%" -m mammogan prepare "%%~fc" || set STATUS=1)
) else (
  for %%c in (%*) do ("%PY%" -m mammogan prepare "%%~fc" || set STATUS=1)
)
exit /b %STATUS%

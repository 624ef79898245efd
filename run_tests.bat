@echo off
rem Set up (or reuse) .venv and run the whole test suite (Windows). Extra arguments go to pytest.
setlocal
cd /d "%~dp0"
call scripts\setup_env.bat requirements-dev.txt || exit /b 1
set TF_CPP_MIN_LOG_LEVEL=2
.venv\Scripts\python.exe -m pytest -q %*
exit /b %ERRORLEVEL%

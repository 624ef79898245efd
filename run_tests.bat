@echo off
rem Set up (or reuse) .venv and run the whole test suite on two worker processes (Windows; pytest-xdist, each test
rem file in one worker). Extra arguments go to pytest (-n 0: one process).
setlocal
cd /d "%~dp0"
call scripts\setup_env.bat requirements-dev.txt || exit /b 1
set TF_CPP_MIN_LOG_LEVEL=2
.venv\Scripts\python.exe -m pytest -q -n 2 --dist loadfile %*
exit /b %ERRORLEVEL%

#!/usr/bin/env bash
# Set up (or reuse) .venv and run the whole test suite on two worker processes (pytest-xdist; each test file stays
# in one worker, so a file's module fixtures are built once). Extra arguments go to pytest (-n 0: one process).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh requirements-dev.txt
export TF_CPP_MIN_LOG_LEVEL=2
exec .venv/bin/python -m pytest -q -n 2 --dist loadfile "$@"

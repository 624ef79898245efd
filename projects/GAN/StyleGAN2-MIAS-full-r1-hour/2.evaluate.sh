#!/usr/bin/env sh
# Evaluate this experiment with ./train_eval_infer.config (works from any folder; extra arguments go to
# `mammogan evaluate`, e.g. --restart for 1.train).
cd "$(dirname "$0")" || exit 1
PY=../../../.venv/bin/python
if [ ! -x "$PY" ]; then
  PY=python3
  "$PY" -c "import mammogan" 2>/dev/null || { echo "No .venv in the repository and no mammogan for $PY: run scripts/setup_env.sh there first." >&2; exit 1; }
fi
exec "$PY" -m mammogan evaluate ./train_eval_infer.config "$@"

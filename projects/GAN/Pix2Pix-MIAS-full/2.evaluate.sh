#!/usr/bin/env sh
# evaluate this experiment with ./train_eval_infer.config (works from any folder).
cd "$(dirname "$0")" || exit 1
PY=../../../.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m mammogan evaluate ./train_eval_infer.config "$@"

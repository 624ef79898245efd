#!/usr/bin/env sh
# train this experiment with ./train_eval_infer.config (works from any folder).
cd "$(dirname "$0")" || exit 1
PY=../../../.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m mammogan train ./train_eval_infer.config "$@"

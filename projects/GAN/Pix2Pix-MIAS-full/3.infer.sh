#!/usr/bin/env sh
# infer this experiment with ./train_eval_infer.config (works from any folder).
cd "$(dirname "$0")" || exit 1
PY=../../../.venv/bin/python
[ -x "$PY" ] || PY=python3
exec "$PY" -m mammogan infer ./train_eval_infer.config "$@"

#!/usr/bin/env sh
# Prepare datasets: DICOM/PGM/PNG → cropped, oriented PNGs, masks, SR pairs, GAN patches, splits.
# Usage: ./1.prepare.sh [CONFIG ...]   (relative paths are read from the folder you run it in;
# default: every dataset/*.config of the repository)
ROOT=$(cd "$(dirname "$0")" && pwd) || exit 1
PY="$ROOT/.venv/bin/python"
if [ ! -x "$PY" ]; then
  PY=python3
  "$PY" -c "import mammogan" 2>/dev/null || { echo "No .venv in $ROOT and no mammogan for $PY: run $ROOT/scripts/setup_env.sh first." >&2; exit 1; }
fi
[ "$#" -gt 0 ] || set -- "$ROOT"/dataset/*.config
status=0
for config in "$@"; do
  "$PY" -m mammogan prepare "$config" || status=$?
done
exit $status

#!/usr/bin/env sh
# Prepare datasets: DICOM/PGM/PNG → cropped, oriented PNGs, masks, SR pairs, GAN patches, splits.
# Usage: ./1.prepare.sh [CONFIG ...]   (default: every dataset/*.config)
cd "$(dirname "$0")" || exit 1
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
[ "$#" -gt 0 ] || set -- dataset/*.config
status=0
for config in "$@"; do
  "$PY" -m mammogan prepare "$config" || status=$?
done
exit $status

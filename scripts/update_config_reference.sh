#!/usr/bin/env bash
# Regenerate docs/config.md from the config schema (tests/test_config.py fails when it is stale).
# Usage: scripts/update_config_reference.sh   (uses .venv/bin/python if present, else $PYTHON or python3)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=.venv/bin/python
reference=$(PYTHONPATH=src TF_CPP_MIN_LOG_LEVEL=3 "$python" -m mammogan config keys)
{
  cat <<'HEADER'
# Config reference

Every section and key of `train_eval_infer.config` and the dataset/generator configs, with its type,
default, meaning and the components that read it. Unknown keys, wrong types and keys that none of the
components a config chooses reads (`[model] task`, generator, discriminator, `[train]` losses, optimizer,
schedule, ...) are errors that name the file, section and key and say what would read it; `config show`
and every run's `resolved.config` comment such keys out.

This page is generated from the schema (`src/mammogan/config/schema.py`) and the component catalog
(`src/mammogan/catalog.py`) by `python -m mammogan config keys`; do not edit it by hand. Regenerate it with `bash scripts/update_config_reference.sh`.
`tests/test_config.py::test_reference_is_generated_from_schema` fails when it is stale.

HEADER
  printf '%s\n' "$reference"
} > docs/config.md.tmp
mv docs/config.md.tmp docs/config.md
echo "wrote docs/config.md"

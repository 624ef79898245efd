#!/usr/bin/env python
"""Offline image/mask augmentation, for users who call the generator script directly.

    python generator/ImageMaskDatasetGenerator.py CONFIG

Same as `mammogan augment CONFIG`: reads the [generator] section of CONFIG and writes the
augmented dataset (see mammogan/augment/generator.py). Works from any folder; when mammogan is
not installed, the repository's src/ is put on the import path.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import mammogan  # noqa: F401  (installed: use it)
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from mammogan.cli import main

if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(0 if len(sys.argv) == 2 else 2)
    sys.exit(main(["augment", sys.argv[1]]))

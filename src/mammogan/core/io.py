"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash or a kill never leaves a half-written output under its final name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed onto `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp" + "".join(target.suffixes), dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as temp:
        temp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_with(target: str | Path, writer: Callable[[Path], None]) -> None:
    """Let `writer` fill a temporary file (e.g. a library that wants a file name), then rename."""
    with atomic_path(target) as temp:
        writer(temp)


def atomic_write_csv(target: str | Path, rows: Sequence[dict[str, Any]], digits: int = 6) -> None:
    """A table of dict rows (columns: the first row's keys); floats to `digits` significant digits (17 round-trips)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: (f"{v:.{digits}g}" if isinstance(v, float) else v) for k, v in row.items()} for row in rows)
    atomic_write_text(target, buffer.getvalue())

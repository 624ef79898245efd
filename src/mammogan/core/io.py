"""Atomic file writes: write to a temporary name in the same folder, then rename.

A crash or a kill never leaves a half-written output under its final name; the temporary files a kill
leaves behind are named so that the next run can find and remove them (`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import functools
import csv
import io
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import UserError
from .logs import get_logger

log = get_logger("io")

# `.<stem>.<8 random characters>.tmp<suffixes>`, as atomic_path names them (mkstemp's random part).
_TEMP_NAME = re.compile(r"^\..*\.[a-z0-9_]{8}\.tmp(\.[^.]+)*$")


@functools.cache
def _new_file_mode() -> int:
    """0666 less the umask: the mode `open()` gives a new file (mkstemp's 0600 suits only the temporary).

    Read once: reading the umask means setting it, which is process-wide.
    """
    umask = os.umask(0o077)  # briefly the strictest usual mask, so a file another thread creates meanwhile stays private
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(target: str | Path, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success it is renamed onto `target`.

    The file gets `mode`, by default the one a plain `open()` would give it (0666 less the umask).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp" + "".join(target.suffixes), dir=target.parent)
    os.close(handle)
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, _new_file_mode() if mode is None else mode)
        os.replace(temp, target)
    finally:
        if temp.exists():
            temp.unlink()


def atomic_write_bytes(target: str | Path, data: bytes, mode: int | None = None) -> None:
    with atomic_path(target, mode) as temp:
        temp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, mode: int | None = None) -> None:
    atomic_write_bytes(target, text.encode("utf-8"), mode)


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


def remove_stale_temps(folder: Path) -> None:
    """Delete the temporary files a killed run left anywhere below `folder` (named as `atomic_path` names
    them, so nothing else is touched). Call it before a run writes into `folder`."""
    stale = [path for path in folder.rglob(".*.tmp*") if path.is_file() and _TEMP_NAME.match(path.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        log.info("%s: %d temporary files left by an interrupted run removed.", folder, len(stale))


def check_writable_folder(folder: Path, where: str) -> None:
    """Create `folder` and a file in it, so an output folder that cannot be written fails before any work
    with a message naming the config key (`where`, e.g. "run.config: [prepare] output_dir") and the reason."""
    blocker = next((path for path in (folder, *folder.parents) if path.exists() and not path.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{where} = {folder}: cannot write there ({blocker} is a file, not a folder).")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check.", suffix=".tmp"):  # a kill leaves a stale temp
            pass
    except OSError as exc:
        raise UserError(f"{where} = {folder}: cannot write there ({exc.strerror or exc}).") from None


def keep_aside(folder: Path) -> Path:
    """Rename a previous run's folder to `<name>-<YYYYmmdd-HHMMSS>` (what `--restart` does) and return the new path."""
    kept = folder.with_name(f"{folder.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    folder.rename(kept)
    log.info("--restart: the previous run in %s is kept as %s.", folder, kept)
    return kept

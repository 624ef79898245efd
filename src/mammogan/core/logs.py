"""Logging to the console and to a log file inside each run's output folder."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOGGER_NAME = "mammogan"


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def setup_console(verbose: bool = False) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.DEBUG)
    if not any(getattr(h, "_mammogan_console", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._mammogan_console = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    for handler in logger.handlers:
        if getattr(handler, "_mammogan_console", False):
            handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


def add_log_file(folder: Path, name: str) -> Path:
    """Also log (with timestamps) to `folder/name`; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    logger = logging.getLogger(LOGGER_NAME)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename) == path.resolve():
            return path
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return path


def close_log_files() -> None:
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        if isinstance(handler, logging.FileHandler):
            handler.close()
            logger.removeHandler(handler)

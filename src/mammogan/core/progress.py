"""Progress bars for long work: count, rate (items/s) and ETA, on stderr; quiet when not a terminal."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "img") -> Iterator[T]:
    """Wrap an iterable in a progress bar showing items/s and the ETA."""
    return iter(
        tqdm(
            items,
            total=total,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0,
            disable=None,  # off when stderr is not a terminal (CI logs stay readable)
        )
    )

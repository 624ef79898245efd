"""Value types for config keys: each parses a TOML value, says what it expects, and writes TOML back."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ValueProblem(ValueError):
    """Raised by a value type; the loader adds the file/section/key to the message."""


class ValueType:
    def parse(self, value: Any, base_dir: Path) -> Any:
        raise NotImplementedError

    def check(self, value: Any) -> None:
        """Check a parsed value against the file system; the loader calls it only for set keys a chosen component reads."""

    def describe(self) -> str:
        raise NotImplementedError

    def to_toml(self, value: Any) -> str:
        return toml_literal(value)


def toml_literal(value: Any) -> str:
    """A TOML literal for the plain values configs hold (bool, int, float, str, lists of those)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            return "nan"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return json.dumps(value.as_posix(), ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


# TensorFlow holds sizes, step counters and seeds as 32-bit integers: a larger value can only crash a run after it
# has started writing.
INT_LIMIT = 2**31 - 1


def _range_text(minimum: float | None, maximum: float | None, above: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f" in {'(' if above else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f" {'>' if above else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _check_range(value: float, minimum: float | None, maximum: float | None, what: str, above: bool = False) -> None:
    low = minimum is not None and (value <= minimum if above else value < minimum)
    if low or (maximum is not None and value > maximum):
        raise ValueProblem(f"expected {what}{_range_text(minimum, maximum, above)}")


@dataclass(frozen=True)
class Int(ValueType):
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[int, ...] | None = None  # e.g. the scales the upsamplers can build

    def parse(self, value: Any, base_dir: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueProblem(f"expected {self.describe()}")
        _check_range(value, self.minimum, self.maximum, "an integer")
        if abs(value) > INT_LIMIT:
            raise ValueProblem(f"expected {self.describe()} and at most {INT_LIMIT} (TensorFlow holds sizes, steps and "
                               "seeds as 32-bit integers)")
        if self.choices is not None and value not in self.choices:
            raise ValueProblem(f"expected {self.describe()}")
        return value

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        return "an integer" + _range_text(self.minimum, self.maximum)


@dataclass(frozen=True)
class Float(ValueType):
    """A finite number; `above` excludes the minimum itself (a learning rate of 0 trains nothing)."""

    minimum: float | None = None
    maximum: float | None = None
    above: bool = False

    def parse(self, value: Any, base_dir: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueProblem(f"expected {self.describe()}")
        value = float(value)
        if not math.isfinite(value):
            raise ValueProblem(f"expected {self.describe()}, not {toml_literal(value)}")
        _check_range(value, self.minimum, self.maximum, "a number", self.above)
        return value

    def describe(self) -> str:
        return "a number" + _range_text(self.minimum, self.maximum, self.above)


@dataclass(frozen=True)
class Bool(ValueType):
    def parse(self, value: Any, base_dir: Path) -> bool:
        if not isinstance(value, bool):
            raise ValueProblem("expected true or false (TOML booleans are unquoted and lower-case)")
        return value

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Str(ValueType):
    choices: tuple[str, ...] | None = None

    def parse(self, value: Any, base_dir: Path) -> str:
        if not isinstance(value, str):
            raise ValueProblem(f"expected {self.describe()}")
        if self.choices is not None and value not in self.choices:
            raise ValueProblem(f"expected {self.describe()}")
        return value

    def describe(self) -> str:
        if self.choices is None:
            return "a string"
        return "one of " + ", ".join(repr(c) for c in self.choices)


@dataclass(frozen=True)
class Pattern(ValueType):
    """A regular expression with exactly one capturing group (the part of a name that is kept); stays a string."""

    def parse(self, value: Any, base_dir: Path) -> str:
        if not isinstance(value, str):
            raise ValueProblem(f"expected {self.describe()}")
        try:
            groups = re.compile(value).groups
        except re.error as error:
            raise ValueProblem(f"{value!r} is not a regular expression ({error}); expected {self.describe()}") from None
        if groups != 1:
            raise ValueProblem(f"{value!r} has {groups} capturing groups; expected {self.describe()}")
        return value

    def describe(self) -> str:
        return "a regular expression with one capturing group, e.g. \"^(\\d+)_\""


@dataclass(frozen=True)
class Name(ValueType):
    """A string that must name an entry of a registry, or of one of the `also` registries (checked by the loader)."""

    registry: str
    also: tuple[str, ...] = ()

    @property
    def registries(self) -> tuple[str, ...]:
        return (self.registry, *self.also)

    def parse(self, value: Any, base_dir: Path) -> str:
        if not isinstance(value, str):
            raise ValueProblem(f"expected {self.describe()}")
        return value

    def describe(self) -> str:
        return f"a registered {' or '.join(self.registries)} name"


@dataclass(frozen=True)
class PathValue(ValueType):
    """A file or folder path; relative paths resolve against the config file's folder.

    `kind` ("folder" or "file") is checked when the path exists, so a file given for a folder is refused at load,
    not reported later as a missing subfolder; `must_exist` also refuses a missing path (output folders may not exist
    yet). `contents` says what the folder should hold, for the message.
    """

    must_exist: bool = False
    kind: str | None = None
    contents: str = ""

    def parse(self, value: Any, base_dir: Path) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise ValueProblem(f"expected {self.describe()}")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        return Path(_normalise(path))

    def check(self, value: Path) -> None:
        if self.must_exist and not value.exists():
            raise ValueProblem(f"{value} does not exist")
        found = "folder" if value.is_dir() else "file" if value.exists() else None
        if self.kind is not None and found not in (None, self.kind):
            holding = f" with {self.contents}" if self.contents else ""
            raise ValueProblem(f"{value} is a {found}; expected a {self.kind}{holding}")

    def describe(self) -> str:
        return f"a {self.kind or 'file or folder'} path (relative paths start at the config file's folder)"


def _normalise(path: Path) -> str:
    import os

    return os.path.normpath(str(path))


@dataclass(frozen=True)
class ListOf(ValueType):
    item: ValueType
    min_length: int = 0
    max_length: int | None = None  # equal to min_length for a pair, a band, ...

    def parse(self, value: Any, base_dir: Path) -> list[Any]:
        if not isinstance(value, list):
            raise ValueProblem(f"expected {self.describe()}")
        if len(value) < self.min_length or (self.max_length is not None and len(value) > self.max_length):
            raise ValueProblem(f"expected {self.describe()}")
        parsed = []
        for index, item in enumerate(value):
            try:
                parsed.append(self.item.parse(item, base_dir))
            except ValueProblem as problem:
                raise ValueProblem(f"item {index} ({item!r}): {problem}") from None
        return parsed

    def check(self, value: list[Any]) -> None:
        for index, item in enumerate(value):
            try:
                self.item.check(item)
            except ValueProblem as problem:
                raise ValueProblem(f"{problem} (item {index})") from None

    def describe(self) -> str:
        if self.max_length is not None:
            count = f" (exactly {self.max_length})" if self.max_length == self.min_length else f" ({self.min_length} to {self.max_length})"
        else:
            count = f" (at least {self.min_length})" if self.min_length else ""
        return f"a list of {self.item.describe()}{count}"


@dataclass(frozen=True)
class Shares(ValueType):
    """One fraction per part, adding up to 1: a whole split into parts, never rescaled behind the user's back."""

    parts: tuple[str, ...]

    def parse(self, value: Any, base_dir: Path) -> list[float]:
        if not isinstance(value, list) or len(value) != len(self.parts):
            raise ValueProblem(f"expected {self.describe()}")
        try:
            shares = ListOf(Float(0.0, 1.0)).parse(value, base_dir)
        except ValueProblem as problem:
            raise ValueProblem(f"expected {self.describe()}; {problem}") from None
        if abs(sum(shares) - 1.0) > 1e-6:  # binary rounding of decimal fractions, not a user's slip
            raise ValueProblem(f"expected {self.describe()}; these add up to {sum(shares):.10g}")
        return shares

    def describe(self) -> str:
        return f"{len(self.parts)} fractions ({', '.join(self.parts)}) adding up to 1"


@dataclass(frozen=True)
class Table(ValueType):
    """A TOML inline table mapping names to numbers, e.g. loss weights {l1 = 1.0, adversarial = 1e-3}."""

    key: ValueType
    value: ValueType

    def parse(self, value: Any, base_dir: Path) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueProblem(f"expected {self.describe()}")
        parsed = {}
        for k, v in value.items():
            try:
                parsed[self.key.parse(k, base_dir)] = self.value.parse(v, base_dir)
            except ValueProblem as problem:
                raise ValueProblem(f"entry {k!r}: {problem}") from None
        return parsed

    def describe(self) -> str:
        return f"a table of {self.key.describe()} = {self.value.describe()}"

    def to_toml(self, value: Any) -> str:
        inner = ", ".join(f"{_toml_key(k)} = {toml_literal(v)}" for k, v in value.items())
        return "{" + inner + "}"


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)

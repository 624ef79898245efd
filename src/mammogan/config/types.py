"""Value types for config keys: each parses a TOML value, says what it expects, and writes TOML back."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ValueProblem(ValueError):
    """Raised by a value type; the loader adds the file/section/key to the message."""


class ValueType:
    def parse(self, value: Any, base_dir: Path) -> Any:
        raise NotImplementedError

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


def _range_text(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _check_range(value: float, minimum: float | None, maximum: float | None, what: str) -> None:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueProblem(f"expected {what}{_range_text(minimum, maximum)}")


@dataclass(frozen=True)
class Int(ValueType):
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[int, ...] | None = None  # e.g. the scales the upsamplers can build

    def parse(self, value: Any, base_dir: Path) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueProblem(f"expected {self.describe()}")
        _check_range(value, self.minimum, self.maximum, "an integer")
        if self.choices is not None and value not in self.choices:
            raise ValueProblem(f"expected {self.describe()}")
        return value

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        return "an integer" + _range_text(self.minimum, self.maximum)


@dataclass(frozen=True)
class Float(ValueType):
    minimum: float | None = None
    maximum: float | None = None

    def parse(self, value: Any, base_dir: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueProblem(f"expected {self.describe()}")
        value = float(value)
        if math.isnan(value):
            raise ValueProblem(f"expected {self.describe()}, not nan")
        _check_range(value, self.minimum, self.maximum, "a number")
        return value

    def describe(self) -> str:
        return "a number" + _range_text(self.minimum, self.maximum)


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
    """A file or folder path; relative paths resolve against the config file's folder."""

    must_exist: bool = False

    def parse(self, value: Any, base_dir: Path) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise ValueProblem(f"expected {self.describe()}")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        path = Path(_normalise(path))
        if self.must_exist and not path.exists():
            raise ValueProblem(f"the path {path} does not exist")
        return path

    def describe(self) -> str:
        return "a path (relative paths start at the config file's folder)"


def _normalise(path: Path) -> str:
    import os

    return os.path.normpath(str(path))


@dataclass(frozen=True)
class ListOf(ValueType):
    item: ValueType
    min_length: int = 0

    def parse(self, value: Any, base_dir: Path) -> list[Any]:
        if not isinstance(value, list):
            raise ValueProblem(f"expected {self.describe()}")
        if len(value) < self.min_length:
            raise ValueProblem(f"expected {self.describe()}")
        parsed = []
        for index, item in enumerate(value):
            try:
                parsed.append(self.item.parse(item, base_dir))
            except ValueProblem as problem:
                raise ValueProblem(f"item {index} ({item!r}): {problem}") from None
        return parsed

    def describe(self) -> str:
        least = f" (at least {self.min_length})" if self.min_length else ""
        return f"a list of {self.item.describe()}{least}"


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

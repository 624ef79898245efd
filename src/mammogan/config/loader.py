"""Read, validate and write `train_eval_infer.config` files (TOML)."""

from __future__ import annotations

import difflib
import re
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from .. import catalog
from ..errors import ConfigError
from ..registry import REGISTRIES, plural, unknown_name_message
from ..core.io import atomic_write_text, check_writable_folder, remove_stale_temps
from ..core.logs import add_log_file
from .readers import reading, refusal
from .schema import SECTIONS, Section
from .types import ListOf, Name, ValueProblem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


class SectionValues:
    """The resolved values of one section, read as attributes (`config.train.batch_size`)."""

    def __init__(self, section: Section, values: Mapping[str, Any]) -> None:
        self._section = section
        self._values = MappingProxyType(dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"[{self._section.name}] has no key {name!r}") from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


class Config:
    """A validated config: every key of every section present, defaults filled in, paths absolute."""

    def __init__(self, path: Path, values: Mapping[str, Mapping[str, Any]], written: Mapping[str, set[str]]) -> None:
        self.path = path
        self._sections = {name: SectionValues(SECTIONS[name], v) for name, v in values.items()}
        self._written = {k: frozenset(v) for k, v in written.items()}
        self.reading = reading(values, written)  # the components this config chooses and the keys they read

    def __getattr__(self, name: str) -> SectionValues:
        sections = self.__dict__.get("_sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(name)

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {name: s.as_dict() for name, s in self._sections.items()}

    def was_written(self, section: str, key: str) -> bool:
        """True if the user's file set this key (rather than it taking its default)."""
        return key in self._written.get(section, frozenset())

    def reads(self, section: str, key: str) -> bool:
        """True if a component this config chooses reads the key (unread keys keep their defaults)."""
        return self.reading.reads(section, key)

    def arguments_for(self, kind: str, name: str, **overrides: Any) -> dict[str, Any]:
        """The keyword arguments of the builder `name` of `kind`: the config keys it reads, `overrides` replacing some.

        An override of a key the builder does not read is left out: the patch GANs resolve d_normalization for
        whatever discriminator is configured, and only some discriminators have one.
        """
        entry = catalog.component(kind, name)
        if entry is None:
            raise KeyError(f"{kind} {name!r} has no entry in mammogan.catalog, so the config keys it reads are unknown")
        values = self.as_dict()
        arguments = {key: values[section][key] for section, keys in entry.reads.items() for key in keys}
        return {**arguments, **{key: value for key, value in overrides.items() if key in arguments}}

    def need(self, section: str, key: str, purpose: str) -> Any:
        """The value of a key that has no usable default for `purpose`, or a clear error."""
        value = self._sections[section].as_dict()[key]
        if value is None or value == "":
            doc = SECTIONS[section].key(key).doc  # type: ignore[union-attr]
            raise ConfigError(f"{self.path}: [{section}] {key} is not set, but {purpose} needs it ({doc}).")
        return value

    def error(self, section: str, key: str, problem: str) -> ConfigError:
        """A ConfigError naming this file, section and key, for problems found after loading."""
        return ConfigError(f"{self.path}: [{section}] {key} = {_show(self.as_dict()[section][key])}: {problem}")


def _show(value: Any) -> str:
    return str(value) if not isinstance(value, str) else repr(value)


def load_config(path: str | Path) -> Config:
    """Parse and validate a config file; all errors name the file, section and key."""
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give the train_eval_infer.config file inside it. {_configs_in(path)}")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found.")
    try:
        text = path.read_bytes().decode("utf-8")
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {_set_twice(text, str(exc)) or f'not valid TOML: {exc}'}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text: {exc}.") from None
    return validate(raw, path)


def derived_config(path: Path, overrides: Mapping[str, Mapping[str, Any]]) -> Config:
    """Another experiment's config with some keys replaced (a value None removes the key): how a study runs a GAN
    project's recipe on its own folds. Paths left as written stay relative to `path`'s folder; errors name `path`."""
    raw = tomllib.loads(load_config(path).path.read_text(encoding="utf-8"))
    for section, keys in overrides.items():
        values = raw.setdefault(section, {})
        for key, value in keys.items():
            if value is None:
                values.pop(key, None)
            else:
                values[key] = value
    return validate(raw, Path(path).expanduser().resolve())


def _configs_in(folder: Path, most: int = 10) -> str:
    """The config files in a folder and its subfolders, for a folder given where a config file belongs."""
    found = [str(p.relative_to(folder)) for p in sorted(folder.glob("*.config")) + sorted(folder.glob("*/*.config"))]
    if not found:
        return "It holds no .config file, nor do its subfolders."
    more = f" and {len(found) - most} more" if len(found) > most else ""
    return f"Config files there: {', '.join(found[:most])}{more}."


_AT_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")
_KEY = re.compile(r"""\s*["']?([A-Za-z0-9_-]+)["']?\s*=""")


def _set_twice(text: str, problem: str) -> str | None:
    """"[train] batch_size is set twice (lines 2 and 4)" when TOML refuses a key or section written twice, else None.

    tomllib only says "Cannot overwrite a value" at the second line; the lines before it tell which key that is.
    """
    at = _AT_LINE.search(problem)
    if at is None or not problem.startswith(("Cannot overwrite a value", "Cannot declare")):
        return None
    second, section, first_line = int(at.group(1)), None, {}
    for number, line in enumerate(text.split("\n")[:second], 1):
        header, key = _HEADER.match(line), _KEY.match(line)
        if header:
            section = header.group(1)
            name = f"section [{section}]"
        elif key:
            name = f"[{section}] {key.group(1)}" if section else key.group(1)
        else:
            continue
        if number == second and name in first_line:
            verb = "declared" if header else "set"
            return f"{name} is {verb} twice (lines {first_line[name]} and {second}); keep one"
        first_line.setdefault(name, number)
    return None


def validate(raw: Mapping[str, Any], path: Path) -> Config:
    base_dir = path.parent
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"{path}: unknown section [{name}].{_suggest(name, SECTIONS)} "
                              f"Valid sections: {', '.join(f'[{s}]' for s in SECTIONS)}.")
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: {name} must be a section written as [{name}], not a single value.")
    values: dict[str, dict[str, Any]] = {}
    written: dict[str, set[str]] = {}
    for name, section in SECTIONS.items():
        given = raw.get(name, {})
        known = {k.name for k in section.keys}
        for key in given:
            if key not in known:
                raise ConfigError(f"{path}: [{name}] unknown key {key!r}.{_suggest(key, known)} "
                                  f"Valid keys of [{name}]: {', '.join(sorted(known))}.")
        values[name] = {}
        written[name] = set(given)
        for key in section.keys:
            if key.name not in given:
                values[name][key.name] = _default(key.default, key.type, base_dir)
                continue
            value = given[key.name]
            try:
                parsed = key.type.parse(value, base_dir)
            except ValueProblem as problem:
                raise ConfigError(f"{path}: [{name}] {key.name} = {_show(value)}: {problem}.") from None
            _check_names(key.type, parsed, f"{path}: [{name}] {key.name}")
            values[name][key.name] = parsed
    config = Config(path, values, written)
    _check_networks(config)
    for name, section in SECTIONS.items():
        for key in section.keys:
            if not config.reads(name, key.name):
                if key.name in written[name]:
                    raise ConfigError(f"{path}: {refusal(values, config.reading, name, key.name)}. "
                                      "Remove it, or choose a component that reads it.")
                continue
            value = values[name][key.name]
            if value is None:  # unset, without a default: nothing to check
                continue
            try:  # only what a chosen component reads: an unread default path may be anything
                key.type.check(value)
            except ValueProblem as problem:
                default = "" if key.name in written[name] else " (the default)"
                raise ConfigError(f"{path}: [{name}] {key.name} = {problem}{default}.") from None
    return config


def _check_networks(config: Config) -> None:
    """Refuse a written generator or discriminator the chosen family cannot call, e.g. a latent generator for SR.

    A default is left alone (and commented out in the resolved config): `evaluate` and `infer` load the trained
    model and never build one from the key.
    """
    for key in SECTIONS["model"].keys:
        problem = network_misfit(config, key.name)
        if problem is not None and config.was_written("model", key.name):
            raise ConfigError(f"{config.path}: {problem}.")


def network_misfit(config: Config, key: str) -> str | None:
    """Why `[model] key` names a network the chosen family cannot call; None if it fits or is no network key."""
    task = config.model.task
    family = catalog.component("family", task) if config.reads("model", "task") else None
    if family is None or key not in family.feeds or not config.reads("model", key):
        return None
    inputs, name = family.feeds[key], getattr(config.model, key)
    network = catalog.component(key, name)
    if network is None or network.takes in inputs:  # a network registered at run time has no catalog entry to check
        return None
    fitting = ", ".join(repr(n) for n in catalog.fitting(task, key))
    return (f"[model] {key} = {name!r} does not fit [model] task = {task!r}: family {task!r} needs a {key} that takes "
            f"{' or '.join(inputs)}, but {key} {name!r} takes {network.takes}. "
            f"{plural(key).capitalize()} that fit: {fitting}")


def _default(default: Any, value_type: Any, base_dir: Path) -> Any:
    if default is None:
        return None
    if isinstance(default, (list, dict)):
        return value_type.parse(default, base_dir) if default else type(default)()
    return value_type.parse(default, base_dir)


def _check_names(value_type: Any, value: Any, where: str) -> None:
    if isinstance(value_type, Name):
        registries = [REGISTRIES[kind] for kind in value_type.registries]
        if not any(value in registry for registry in registries):
            known = sorted(name for registry in registries for name in registry.names())
            raise ConfigError(unknown_name_message(value_type.registries, value, known, where))
    elif isinstance(value_type, ListOf):
        for item in value:
            _check_names(value_type.item, item, where)


def _suggest(word: str, candidates: Any) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean `{close[0]}`?" if close else ""


def render_config(config: Config) -> str:
    """The fully resolved config as TOML (defaults filled in, paths absolute); unset and unread keys are comments,
    so that the loader, which refuses keys no chosen component reads, takes it back."""
    lines = [f"# Resolved from {config.path}",
             "# Every key with its effective value (commented out: keys the chosen components do not read, and a "
             "default network the task cannot call); read back it gives the same config.", ""]
    for name, section in SECTIONS.items():
        lines.append(f"[{name}]")
        values = config.as_dict()[name]
        for key in section.keys:
            value = values[key.name]
            if value is None:
                lines.append(f"# {key.name} is not set")
            else:
                unused = not config.reads(name, key.name) or (name == "model" and network_misfit(config, key.name) is not None)
                comment = "# " if unused else ""
                lines.append(f"{comment}{key.name} = {key.type.to_toml(value)}")
        lines.append("")
    return "\n".join(lines)


def start_output_folder(config: Config, section: str, log_name: str) -> Path:
    """Create `[section] output_dir` with its log file and the resolved config it ran with; returns the folder.

    A folder that cannot be written is refused first, naming the key; temporary files an interrupted run left
    there are removed.
    """
    folder = config.as_dict()[section]["output_dir"]
    check_writable_folder(folder, f"{config.path}: [{section}] output_dir")
    add_log_file(folder, log_name)
    remove_stale_temps(folder)  # left by a run killed mid-write
    write_resolved_config(config, folder)
    return folder


def write_resolved_config(config: Config, folder: Path) -> Path:
    """Write the effective config next to a run's outputs, so the run can be repeated exactly."""
    target = Path(folder) / "resolved.config"
    atomic_write_text(target, render_config(config))
    return target

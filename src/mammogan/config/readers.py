"""Which components a config chooses, which keys they read, and why a written key nobody reads is refused.

The choice follows from the config's own values: the commands its sections configure, then every name a
key read by a chosen component holds ([model] task, generator, [train] optimizer, ...) and the parts those
components use (see `catalog`). A key is read when a chosen component reads it under the config's values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .. import catalog
from ..catalog import Ref, When
from ..registry import REGISTRIES
from .schema import SECTIONS
from .types import ListOf, Name

Values = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Reading:
    """The components a config chooses and the (section, key) pairs they read."""

    components: tuple[Ref, ...]
    keys: frozenset[tuple[str, str]]
    complete: bool  # False when a chosen name was registered at run time without a catalog entry: its reads are unknown

    def reads(self, section: str, key: str) -> bool:
        return not self.complete or (section, key) in self.keys


def reading(values: Values, written: Mapping[str, set[str]]) -> Reading:
    """Follow the config from the commands its written sections configure (none written: train/evaluate/infer)."""
    queue: list[Ref] = [("part", command) for command, sections in catalog.COMMAND_SECTIONS.items()
                        if any(written.get(section) for section in sections)] or [("part", catalog.RUN_COMMANDS)]
    chosen: list[Ref] = []
    keys: set[tuple[str, str]] = set()
    complete = True
    while queue:
        ref = queue.pop(0)
        if ref in chosen:
            continue
        chosen.append(ref)
        entry = catalog.component(*ref)
        if entry is None:
            complete = False
            continue
        for section, key in entry.active(values):
            keys.add((section, key))
            queue += _named(section, key, values[section][key])
        queue += entry.uses
    return Reading(tuple(chosen), frozenset(keys), complete)


def _named(section: str, key: str, value: Any) -> list[Ref]:
    """The components a key's value names ([model] generator = "rrdb" → generator 'rrdb')."""
    value_type = SECTIONS[section].key(key).type  # type: ignore[union-attr]
    items, item_type = (value, value_type.item) if isinstance(value_type, ListOf) else ([value], value_type)
    if not isinstance(item_type, Name):
        return []
    return [(next((kind for kind in item_type.registries if item in REGISTRIES[kind]), item_type.registry), item)
            for item in items]


@dataclass
class _Group:
    """Readers of one key that share a kind and conditions, e.g. family 'dcgan', 'conditional' and 'mask_to_image'."""

    kind: str
    names: list[str]
    alternatives: list[tuple[When, ...]]  # read when all conditions of one alternative hold; () for always
    refs: list[Ref]  # the components that count as readers (for a part: it and its users)
    part: str = ""  # a command, or a part read through its users (e.g. "the trainer loop" of the trainer families)

    def label(self, quote: str) -> str:
        if self.part and not self.names:  # a command
            return self.part
        quoted = [f"{quote}{name}{quote}" for name in self.names]
        names = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        return f"{self.part} (of {self.kind} {names})" if self.part else f"{self.kind} {names}"

    def condition(self, quote: str) -> str:
        """" only when ..." for a conditional reader, else ""."""
        if () in self.alternatives:
            return ""
        return " only when " + " or ".join(" and ".join(f"{quote}{c}{quote}" for c in conditions)
                                           for conditions in self.alternatives)


def _groups(section: str, key: str) -> list[_Group]:
    groups: list[_Group] = []
    for ref, conditions in catalog.readers(section, key):
        kind, name = ref
        users = catalog.users(ref) if kind == "part" else []
        last = groups[-1] if groups else None
        if last is not None and last.refs[0] == ref and (last.part or len(last.names) == 1):  # ref under other conditions
            last.alternatives.append(conditions)
        elif kind == "part":
            users_kind = users[0][0] if users else kind
            groups.append(_Group(users_kind, [user for _, user in users], [conditions], [ref, *users], part=name))
        elif last is not None and not last.part and (last.kind, last.alternatives) == (kind, [conditions]):
            last.names.append(name)
            last.refs.append(ref)
        else:
            groups.append(_Group(kind, [name], [conditions], [ref]))
    return groups


def _show(values: Values, condition: When) -> str:
    """The value a condition tests, as written in a config, e.g. `[train] gan_steps = 0`."""
    value_type = SECTIONS[condition.section].key(condition.key).type  # type: ignore[union-attr]
    return f"[{condition.section}] {condition.key} = {value_type.to_toml(values[condition.section][condition.key])}"


def refusal(values: Values, chosen: Reading, section: str, key: str) -> str:
    """Why `[section] key` is not read: who reads it (under which conditions) and which chosen components do not."""
    groups = _groups(section, key)
    readers = {ref for group in groups for ref in group.refs}
    phrases = []
    for group in groups:
        phrase = group.label("'") + group.condition("")
        failing = [c for conditions in group.alternatives for c in conditions if not c.holds(values[c.section][c.key])]
        if set(group.refs) & set(chosen.components) and failing:
            phrase += f" (here {', '.join(_show(values, c) for c in failing)})"
        phrases.append(phrase)
    text = f"[{section}] {key} is read by {', and by '.join(phrases)}"
    chosen_readers = readers & set(chosen.components)
    # Per kind: the chosen components that do not read it, unless one of that kind does under other values.
    settled = {ref[0] for ref in chosen_readers}
    compared = {ref[0] for ref in readers if ref[0] != "part"} - settled
    not_by = [ref for ref in chosen.components if ref[0] in compared]
    if not_by:
        return f"{text}, not by {', '.join(catalog.describe(ref) for ref in not_by)}"
    return text if chosen_readers else text + _unused_choice(values, chosen, readers)


def _unused_choice(values: Values, chosen: Reading, readers: set[Ref]) -> str:
    """For readers none of which is chosen: a key naming one that is itself not read, and why."""
    for section in SECTIONS.values():
        for key in section.keys:
            value = values[section.name][key.name]
            for ref in _named(section.name, key.name, value):
                if ref in readers and not chosen.reads(section.name, key.name):
                    return (f"; [{section.name}] {key.name} = {key.type.to_toml(value)} names {catalog.describe(ref)}, but "
                            f"{refusal(values, chosen, section.name, key.name)}")
    return ", none of which this config uses"


def readers_markdown(section: str, key: str) -> str:
    """The readers of a key for the reference table, e.g. "generator `pix2pix_unet`; family `srgan` only when ..."."""
    return "; ".join(group.label("`") + group.condition("`") for group in _groups(section, key))

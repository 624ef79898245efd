"""Name → callable registries, so a config string picks a class without `eval`.

Each kind of pluggable thing (generator, discriminator, loss, metric, optimizer, dataset,
augmentation, model family, feature extractor, classifier) has one `Registry`. Modules register
with a decorator::

    @GENERATORS.register("srresnet")
    def build_srresnet(...): ...

Config validation asks the registry whether a name exists and, if not, lists the names it has; which
module registers each name is in `catalog`.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable, Iterator

from . import catalog
from .errors import ConfigError


class Registry:
    """A named table of factories of one kind.

    Names come from `catalog` without importing anything, so validating a config stays free of TensorFlow;
    `get` imports the one module that registers the name. Names registered at run time (e.g. by tests)
    join the catalogued ones.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._items and self._items[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted({*catalog.names(self.kind), *self._items})

    def __contains__(self, name: str) -> bool:
        return name in self._items or catalog.component(self.kind, name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str, where: str = "") -> Callable[..., Any]:
        """Return the factory for `name`; `where` names the config key for the error message."""
        entry = catalog.component(self.kind, name)
        if name not in self._items and entry is not None:
            importlib.import_module(entry.module)
        if name not in self._items:
            raise ConfigError(unknown_name_message((self.kind,), name, self.names(), where))
        return self._items[name]


def unknown_name_message(kinds: tuple[str, ...], name: str, known: list[str], where: str = "") -> str:
    """"unknown loss 'l3'. Did you mean 'l1'? Registered losses: ..." for a name none of the `kinds` registries has."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    prefix = f"{where}: " if where else ""
    singular = " or ".join(kind.replace("_", " ") for kind in kinds)
    return (f"{prefix}unknown {singular} {name!r}.{hint} "
            f"Registered {' or '.join(plural(kind) for kind in kinds)}: {', '.join(known) or '(none)'}.")


def plural(kind: str) -> str:
    """The plural of a registry kind in words: loss → losses, family → families, adversarial_loss → adversarial losses."""
    noun = kind.replace("_", " ")
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("loss")
ADVERSARIAL_LOSSES = Registry("adversarial_loss")
METRICS = Registry("metric")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("schedule")
FAMILIES = Registry("family")  # [model] task: what a config trains, evaluates and infers
AUGMENTATIONS = Registry("augmentation")
DIFFAUGMENTS = Registry("diffaugment")  # differentiable policies applied before the discriminator
DEGRADATIONS = Registry("degradation")
PREPARE_KINDS = Registry("prepare_kind")
FEATURE_EXTRACTORS = Registry("feature_extractor")
CLASSIFIERS = Registry("classifier")

REGISTRIES: dict[str, Registry] = {
    r.kind: r
    for r in (
        GENERATORS,
        DISCRIMINATORS,
        LOSSES,
        ADVERSARIAL_LOSSES,
        METRICS,
        OPTIMIZERS,
        SCHEDULES,
        FAMILIES,
        AUGMENTATIONS,
        DIFFAUGMENTS,
        DEGRADATIONS,
        PREPARE_KINDS,
        FEATURE_EXTRACTORS,
        CLASSIFIERS,
    )
}

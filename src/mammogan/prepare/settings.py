"""`[prepare]` as the picklable settings each worker process receives and each image's record is fingerprinted with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..config.loader import Config
from ..data.degradation import DegradationSpec

# [prepare] keys that choose the sources, the split or how the run goes rather than what one image's
# outputs are (an image's split and lesions are fingerprinted with it): changing them redoes no finished
# image. Every other key, a new one included, is part of the fingerprint.
RUN_KEYS = frozenset({"kind", "input_dir", "info_file", "annotations_dir", "metadata_file", "mias_reference_size",
                      "output_dir", "split_ratios", "pseudonym_key_file", "workers", "overwrite", "on_error"})


@dataclass(frozen=True)
class PrepareSettings:
    """Every [prepare] value, read as an attribute (`settings.patch_size`), plus the pseudonym key.

    The values are the whole validated section, every key the schema (config.schema.PREPARE) defines,
    not a hand-copied subset: a new [prepare] key reaches the workers and the fingerprint with no code here.
    """

    values: dict[str, Any]
    pseudonym_key: bytes

    @classmethod
    def from_config(cls, config: Config, pseudonym_key: bytes) -> PrepareSettings:
        """The section's values, after the checks the schema cannot express."""
        size, multiple = config.prepare.sr_patch_size, math.lcm(*config.prepare.sr_scales)
        if size % multiple:
            raise config.error("prepare", "sr_patch_size", f"expected a multiple of {multiple} so that every sr_scales "
                               "factor divides it (LR patches are HR patches / scale), or 0")
        return cls(config.prepare.as_dict(), pseudonym_key)

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})  # empty while unpickling, before the fields are set
        if name in values:
            return values[name]
        raise AttributeError(f"[prepare] has no key {name!r}")

    def output_values(self) -> dict[str, Any]:
        """What an image's outputs depend on (all but RUN_KEYS), as JSON-ready values for its fingerprint."""
        return {**{k: v for k, v in self.values.items() if k not in RUN_KEYS}, "pseudonym_key": self.pseudonym_key.hex()}

    def degradation_spec(self, scale: int) -> DegradationSpec:
        return DegradationSpec(self.degradation, scale, self.blur_sigma, self.noise_std)

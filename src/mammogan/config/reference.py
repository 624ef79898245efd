"""The config reference (Markdown), generated from the schema and the catalog so it never drifts from the code."""

from __future__ import annotations

from .readers import readers_markdown
from .schema import SECTIONS


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference_markdown() -> str:
    parts = []
    for section in SECTIONS.values():
        parts.append(f"### `[{section.name}]`\n\n{section.doc}\n")
        parts.append("| key | type | default | meaning | read by |")
        parts.append("| --- | --- | --- | --- | --- |")
        for key in section.keys:
            default = "(not set)" if key.default is None else f"`{key.type.to_toml(key.default)}`"
            parts.append(f"| `{key.name}` | {_cell(key.type.describe())} | {_cell(default)} | {_cell(key.doc)} | "
                         f"{_cell(readers_markdown(section.name, key.name))} |")
        parts.append("")
    return "\n".join(parts)

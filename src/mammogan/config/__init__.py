"""The TOML config API: schema, loader, reference."""

from .loader import Config, load_config, render_config, write_resolved_config

__all__ = ["Config", "load_config", "render_config", "write_resolved_config"]

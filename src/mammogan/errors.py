"""Errors the user can fix; the CLI prints them as one paragraph instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (config, files, data) rather than a bug in MammoGAN."""


class ConfigError(UserError):
    """A config file is unreadable, has an unknown key, or a value of the wrong type or range."""


class DataError(UserError):
    """An input image, annotation or dataset folder cannot be used as asked."""

"""Downstream-utility benchmark (`[model] task = "utility"`); importing the package registers it in `BENCHMARKS`."""

from . import benchmark, classifier

__all__ = ["benchmark", "classifier"]

"""Downstream-utility benchmark (`[model] task = "utility"`) and domain-extractor training
(`task = "domain_extractor"`); importing the package registers both in `BENCHMARKS`."""

from . import benchmark, classifier, domain_extractor

__all__ = ["benchmark", "classifier", "domain_extractor"]

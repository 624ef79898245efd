"""Image-quality and GAN metrics; importing the package fills `METRICS` and `FEATURE_EXTRACTORS`."""

from . import distribution, features, full_reference

__all__ = ["distribution", "features", "full_reference"]

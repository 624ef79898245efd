"""Losses, registered by name: pixel (plain and calcification-aware), adversarial, feature matching, spectral, penalties."""

from . import adversarial, pixel  # noqa: F401  (registration side effects)
from .adversarial import AdversarialLoss, gradient_penalty, r1_penalty
from .pixel import feature_matching_loss, pixel_loss_per_example
from .spectral import spectral_loss_per_example

__all__ = ["AdversarialLoss", "gradient_penalty", "r1_penalty", "feature_matching_loss", "pixel_loss_per_example", "spectral_loss_per_example"]

"""MammoGAN: GANs for mammograms — super-resolution and synthetic image/mask data."""

__version__ = "0.1.0"

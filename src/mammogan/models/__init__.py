"""Network architectures, one file each; importing this package registers them by name."""

from . import conditional, discriminators, gan_generators, pix2pix, rrdb, srresnet  # noqa: F401  (registration side effects)

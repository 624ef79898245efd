"""The generic Trainer and the tasks (SRGAN, synthetic GANs) that plug into it."""

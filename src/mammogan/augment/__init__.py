"""Offline augmentation of prepared datasets (`mammogan augment`, [generator]).

`transforms` holds the registered augmentations (vectorised, image and masks warped by the same map);
`generator` turns a config into a recipe and writes the augmented dataset with a process pool.
"""

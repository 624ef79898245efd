"""Inference (`mammogan infer`): tiled SR of full-field mammograms, sampling of synthetic images."""

"""Data preparation: raw mammograms → dataset folders (`mammogan prepare`)."""

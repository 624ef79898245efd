"""Reading and writing mammograms, annotations and datasets."""

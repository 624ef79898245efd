"""Small shared helpers: atomic file writing, logging, progress."""

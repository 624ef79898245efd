"""Per-epoch side outputs of training (epoch-change tiles)."""

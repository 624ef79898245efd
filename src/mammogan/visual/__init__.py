"""What a person looks at: epoch-change tiles, comparison panels, training curves and contact sheets."""

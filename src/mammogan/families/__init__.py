"""Model families: each registered class owns one `[model] task` — its models, training steps, validation
tiles, evaluation and inference. The registry imports a family's module when its name is looked up."""

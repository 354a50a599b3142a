"""Step implementations: one module per step kind, each with a VERSION and a run(ctx)."""

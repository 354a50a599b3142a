"""dialc runtime: evaluate."""

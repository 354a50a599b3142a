"""dialc runtime: engine."""

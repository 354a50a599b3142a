"""dialc runtime: train."""

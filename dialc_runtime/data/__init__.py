"""dialc runtime: data."""

"""dialc runtime: report."""

"""dialc runtime: plans in, executed steps, artifacts and records out (heavy imports live here)."""

"""Model backends: batch-first generation and scoring behind one interface (see base.py)."""

"""dialc: the .dial language compiler (spec text → diagnostics, AST, IR and a plan DAG)."""

__version__ = "0.1.0"

"""`python -m dialc` → the command-line interface."""

from dialc.cli import main

main()

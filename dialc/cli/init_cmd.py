"""`dialc init NAME [--from CORPUS]` → dialc.scaffold; prints what it made and the next commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer


def init(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Project folder to create (its spec: NAME/NAME.dial).")],
    corpus: Annotated[Path | None, typer.Option(
        "--from", metavar="CORPUS",
        help="A JSONL (one dialogue per line) or CSV (one turn per row) corpus: its field mapping, speaker roles "
             "and scenarios are guessed, and it is copied into NAME/data/.")] = None,
) -> None:
    """Scaffold a project: a spec that validates and runs, data/, .gitignore for run directories, README."""
    from dialc.scaffold import ScaffoldError, init_project

    try:
        project, mapping = init_project(name, corpus)
    except ScaffoldError as exc:
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    spec = project / f"{project.name}.dial"
    typer.echo(f"created {project}/: {spec.name}, data/, .gitignore, README.md")
    typer.echo(f"  source mapping: {', '.join(f'{k} = field({v!r})' for k, v in mapping.fields.items())}")
    typer.echo(f"  speaker labels: {', '.join(sorted(mapping.labels))}; "
               f"scenarios: {', '.join(sorted(mapping.scenarios)) or 'none'}")
    typer.echo(f"next: dialc validate {spec} && dialc run {spec} --dry-run")


COMMANDS: list[tuple[str, Callable[..., Any]]] = [("init", init)]

"""Shared command-line pieces → typer option types, output formats and the spec → front end / plan steps."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from dialc import __version__
from dialc.cli.lint import emit_diagnostics
from dialc.frontend import Frontend, paused_gc, run_frontend
from dialc.security import allow_paths

SetOption = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KIND.NAME.FIELD=VALUE",
                                                     help="Override a spec field, e.g. sample.prompts.count=40.")]
SpecArg = Annotated[Path, typer.Argument(metavar="SPEC", help="A .dial spec file.")]
RunDirOption = Annotated[Path | None, typer.Option("--run-dir", help="Run directory (default: the pipeline's "
                                                                       "output, runs/NAME beside the spec).")]


def _allow(paths: list[Path] | None) -> list[Path] | None:
    allow_paths(paths)  # every spec this command checks may read inside these folders too
    return paths


AllowPathOption = Annotated[list[Path] | None, typer.Option(
    "--allow-path", metavar="DIR", callback=_allow,
    help="Also let the spec read files inside DIR (default: only inside the spec's folder or its "
         "version-control root). Repeatable.")]


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def front(spec: Path, overrides: list[str] | None) -> Frontend:
    """Run the front end and stop with exit 1 (diagnostics printed) when the spec has errors."""
    result = run_frontend(spec, overrides)
    if result.diags.has_errors() or result.ir is None:
        emit_diagnostics(result.diags, 1)
        raise typer.Exit(1)
    if result.diags.items:
        emit_diagnostics(result.diags, 1, show_summary=False)
    return result


def load_plan(spec: Path, overrides: list[str] | None) -> Any:
    """The checked spec compiled to its plan (exit 1 with diagnostics when it has errors)."""
    from dialc.compiler import compile_plan

    checked = front(spec, overrides)
    assert checked.ir is not None
    with paused_gc():
        return compile_plan(checked.ir, checked.path)


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"dialc {__version__}")
        raise typer.Exit(0)


def root(
    version: Annotated[bool, typer.Option("--version", callback=show_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """dialc: compile .dial specs into domain fine-tuning data pipelines and run them."""

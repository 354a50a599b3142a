"""Command line → front end / compiler / runtime calls; exit 0 clean, 1 errors found, 2 usage or crash."""

from __future__ import annotations

import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from dialc import __version__
from dialc.codes import CODES
from dialc.diagnostics import Diagnostics, render_json, render_text, summary
from dialc.frontend import Frontend, run_frontend

app = typer.Typer(
    name="dialc",
    help="dialc: compile .dial specs into domain fine-tuning data pipelines (Dial-insight method) and run them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

SetOption = Annotated[list[str] | None, typer.Option("--set", "-s", metavar="KIND.NAME.FIELD=VALUE",
                                                     help="Override a spec field, e.g. sample.prompts.count=40.")]
SpecArg = Annotated[Path, typer.Argument(metavar="SPEC", help="A .dial spec file.")]


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class GraphFormat(str, Enum):
    mermaid = "mermaid"
    dot = "dot"


class DebugForm(str, Enum):
    tree = "tree"
    ast = "ast"
    ir = "ir"
    plan = "plan"


def _emit_diagnostics(diags: Diagnostics, files: int, fmt: OutputFormat = OutputFormat.text,
                      show_summary: bool = True, err: bool = True) -> None:
    if fmt == OutputFormat.json:
        typer.echo(render_json(diags))
        return
    text = render_text(diags)
    if text:
        typer.echo(text, err=err)
    if show_summary and (diags.items or files > 1):
        typer.echo(summary(diags, files), err=err)


def _front(spec: Path, overrides: list[str] | None) -> Frontend:
    """Run the front end and stop with exit 1 (diagnostics printed) when the spec has errors."""
    front = run_frontend(spec, overrides)
    if front.diags.has_errors() or front.ir is None:
        _emit_diagnostics(front.diags, 1)
        raise typer.Exit(1)
    if front.diags.items:
        _emit_diagnostics(front.diags, 1, show_summary=False)
    return front


def _plan(spec: Path, overrides: list[str] | None) -> Any:
    from dialc.compiler import compile_plan

    front = _front(spec, overrides)
    assert front.ir is not None
    return compile_plan(front.ir, front.path)


@app.command()
def validate(
    specs: Annotated[list[Path], typer.Argument(metavar="SPEC...", help="Spec files to check.")],
    overrides: SetOption = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="text (mypy style) or json.")] = OutputFormat.text,
) -> None:
    """Parse and check specs; print every problem in one pass. Loads no model."""
    combined = Diagnostics()
    for spec in specs:
        front = run_frontend(spec, overrides)
        combined.items.extend(front.diags.items)
        combined.sources.update(front.diags.sources)
    _emit_diagnostics(combined, len(specs), fmt, err=False)
    if fmt == OutputFormat.text and not combined.items and len(specs) == 1:
        typer.echo(summary(combined, 1))
    raise typer.Exit(1 if combined.has_errors() else 0)


@app.command(name="compile")
def compile_cmd(
    spec: SpecArg,
    overrides: SetOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the plan here.")] = None,
) -> None:
    """Compile a spec to its plan: a DAG of steps as canonical JSON (same spec → same bytes)."""
    text = _plan(spec, overrides).to_json()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


@app.command()
def graph(
    spec: SpecArg,
    overrides: SetOption = None,
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f", help="mermaid or dot.")] = GraphFormat.mermaid,
) -> None:
    """Draw the plan's DAG (mermaid flowchart or Graphviz dot)."""
    from dialc.render import to_dot, to_mermaid

    plan = _plan(spec, overrides)
    typer.echo(to_mermaid(plan) if fmt == GraphFormat.mermaid else to_dot(plan), nl=False)


@app.command()
def fmt(
    specs: Annotated[list[Path], typer.Argument(metavar="SPEC...", help="Spec files to format.")],
    write: Annotated[bool, typer.Option("--write", "-w", help="Rewrite the files in place.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 if a file is not formatted.")] = False,
) -> None:
    """Print (or rewrite) specs in canonical form; idempotent; comments kept."""
    from dialc.formatter import format_module
    from dialc.frontend import parse_file
    from dialc.source import read_source

    unformatted = 0
    for spec in specs:
        diags = Diagnostics()
        module = parse_file(spec, diags)
        if module is None or diags.has_errors():
            _emit_diagnostics(diags, 1)
            raise typer.Exit(1)
        original = read_source(spec).text  # bytes decoded as the parser saw them (CRLF kept)
        text = format_module(module, original)
        if check:
            if text != original:
                unformatted += 1
                typer.echo(f"would reformat {spec}", err=True)
        elif write:
            if text != original:
                spec.write_text(text, encoding="utf-8")
                typer.echo(f"reformatted {spec}", err=True)
        else:
            typer.echo(text, nl=False)
    raise typer.Exit(1 if unformatted else 0)


@app.command()
def codes() -> None:
    """List every diagnostic code with its default severity and meaning."""
    width = max(len(c) for c in CODES)
    for code, (severity, meaning) in sorted(CODES.items()):
        typer.echo(f"{code:<{width}}  {severity:<7}  {meaning}")


@app.command()
def debug(
    form: Annotated[DebugForm, typer.Argument(help="Which intermediate form: tree, ast, ir or plan.")],
    spec: SpecArg,
    overrides: SetOption = None,
) -> None:
    """Print an intermediate form: the Lark tree, the AST, the IR or the plan."""
    if form == DebugForm.plan:
        typer.echo(_plan(spec, overrides).to_json(), nl=False)
        return
    if form == DebugForm.tree:
        _debug_tree(spec)
        return
    front = _front(spec, overrides)
    if form == DebugForm.ast:
        for module in front.modules:
            typer.echo(module.model_dump_json(indent=2, exclude={"comments"}))
    else:
        assert front.ir is not None
        typer.echo(front.ir.model_dump_json(indent=2))


def _debug_tree(spec: Path) -> None:
    from dialc.parser import parse_source
    from dialc.source import SourceError, read_source

    diags = Diagnostics()
    try:
        source = read_source(spec)
    except SourceError as exc:
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(1) from exc
    tree, _ = parse_source(source, diags)
    if tree is None:
        _emit_diagnostics(diags, 1)
        raise typer.Exit(1)
    typer.echo(tree.pretty())


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dialc {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """dialc: compile .dial specs into domain fine-tuning data pipelines and run them."""


def main() -> None:
    """Entry point: any exception escaping a command is a dialc bug → 'internal error', exit 2."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("dialc: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        import click

        if isinstance(exc, click.exceptions.UsageError):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        typer.echo(f"dialc: internal error: {type(exc).__name__}: {exc}", err=True)
        typer.echo(traceback.format_exc(), err=True)
        sys.exit(2)


def _register_runtime_commands() -> None:
    """The runtime commands live in dialc/cli_run.py; they import runtime/ only when invoked."""
    import dialc.cli_run  # noqa: F401


_register_runtime_commands()

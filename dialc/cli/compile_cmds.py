"""Compiler commands (validate, compile, graph, fmt, codes, debug) → front end / compiler calls and their output."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from dialc.cli import lint
from dialc.cli.common import AllowPathOption, OutputFormat, SetOption, SpecArg, front, load_plan
from dialc.codes import CODES
from dialc.diagnostics import Diagnostics


class GraphFormat(str, Enum):
    mermaid = "mermaid"
    dot = "dot"


class DebugForm(str, Enum):
    tree = "tree"
    ast = "ast"
    ir = "ir"
    plan = "plan"


def validate(
    specs: Annotated[list[Path], typer.Argument(metavar="SPEC...", help="Spec files to check.")],
    overrides: SetOption = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="text (mypy style) or json.")] = OutputFormat.text,
    allow_path: AllowPathOption = None,
) -> None:
    """Parse and check specs; print every problem in one pass. Loads no model."""
    raise typer.Exit(lint.validate(specs, overrides, fmt.value))


def compile_cmd(
    spec: SpecArg,
    overrides: SetOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the plan here.")] = None,
    allow_path: AllowPathOption = None,
) -> None:
    """Compile a spec to its plan: a DAG of steps as canonical JSON (same spec → same bytes)."""
    text = load_plan(spec, overrides).to_json()
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)


def graph(
    spec: SpecArg,
    overrides: SetOption = None,
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f", help="mermaid or dot.")] = GraphFormat.mermaid,
    allow_path: AllowPathOption = None,
) -> None:
    """Draw the plan's DAG (mermaid flowchart or Graphviz dot)."""
    from dialc.render import to_dot, to_mermaid

    drawn = load_plan(spec, overrides)
    typer.echo(to_mermaid(drawn) if fmt == GraphFormat.mermaid else to_dot(drawn), nl=False)


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
            lint.emit_diagnostics(diags, 1)
            raise typer.Exit(1)
        original = read_source(spec).text  # bytes decoded as the parser saw them (CRLF kept)
        text = format_module(module, original)
        if check:
            if text != original:
                unformatted += 1
                typer.echo(format_diff(spec, original, text), nl=False)
                typer.echo(f"would reformat {spec}", err=True)
        elif write:
            if text != original:
                spec.write_text(text, encoding="utf-8")
                typer.echo(f"reformatted {spec}", err=True)
        else:
            typer.echo(text, nl=False)
    raise typer.Exit(1 if unformatted else 0)


def format_diff(spec: Path, original: str, formatted: str) -> str:
    """`fmt --check`'s report: a unified diff from the file as it is to the file as fmt would write it."""
    import difflib

    def lines(text: str) -> list[str]:  # split at "\n" only, as the parser does (not at U+2028 or \f)
        parts = text.split("\n")
        return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])

    diff = difflib.unified_diff(lines(original), lines(formatted), fromfile=f"{spec}", tofile=f"{spec} (formatted)")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)


def codes() -> None:
    """List every diagnostic code with its default severity and meaning."""
    width = max(len(c) for c in CODES)
    for code, (severity, meaning) in sorted(CODES.items()):
        typer.echo(f"{code:<{width}}  {severity:<7}  {meaning}")


def debug(
    form: Annotated[DebugForm, typer.Argument(help="Which intermediate form: tree, ast, ir or plan.")],
    spec: SpecArg,
    overrides: SetOption = None,
    allow_path: AllowPathOption = None,
) -> None:
    """Print an intermediate form: the Lark tree, the AST, the IR or the plan."""
    if form == DebugForm.plan:
        typer.echo(load_plan(spec, overrides).to_json(), nl=False)
        return
    if form == DebugForm.tree:
        _debug_tree(spec)
        return
    checked = front(spec, overrides)
    if form == DebugForm.ast:
        for module in checked.modules:
            typer.echo(module.model_dump_json(indent=2, exclude={"comments"}))
    else:
        assert checked.ir is not None
        typer.echo(checked.ir.model_dump_json(indent=2))


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
        lint.emit_diagnostics(diags, 1)
        raise typer.Exit(1)
    typer.echo(tree.pretty())


def lsp(
    stdio: Annotated[bool, typer.Option("--stdio", help="Talk over stdin/stdout (the default and only transport; "
                                        "accepted because editors pass it).")] = False,
) -> None:
    """Run the language server for editors (LSP over stdio): diagnostics, hover, completion, navigation, fmt."""
    from dialc.lsp.server import serve  # pygls is imported by this command only

    serve()


# (name, function) in the order `dialc --help` lists them
COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("validate", validate), ("compile", compile_cmd), ("graph", graph), ("fmt", fmt), ("codes", codes),
    ("debug", debug), ("lsp", lsp),
]

"""A spec path (+ --set overrides) → parsed modules with includes → IR → checked IR, with diagnostics."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dialc import syntax as ast
from dialc.checks import run_checks
from dialc.diagnostics import Diagnostics, Note
from dialc.ir import IR
from dialc.overrides import apply_overrides
from dialc.parser import parse_source
from dialc.resolve import resolve
from dialc.source import Source, SourceError, Span, read_source
from dialc.transformer import to_ast

MAX_INCLUDE_DEPTH = 32


@dataclass
class Frontend:
    """Everything the front end produced for one spec file."""

    path: str
    diags: Diagnostics
    modules: list[ast.Module] = field(default_factory=list)
    ir: IR | None = None


def display_path(path: Path) -> str:
    """Paths are reported relative to the working directory when inside it, as users typed them."""
    if not path.is_absolute():
        return path.as_posix()
    try:
        relative = Path(os.path.relpath(path))
    except ValueError:
        return path.as_posix()
    return path.as_posix() if relative.parts[:1] == ("..",) else relative.as_posix()


def parse_file(path: Path, diags: Diagnostics, name: str | None = None,
               at: Span | None = None) -> ast.Module | None:
    """Read and parse one file; unreadable files are reported at `at` (the include) if given."""
    shown = name or display_path(path)
    try:
        source = read_source(path, shown)
    except SourceError as exc:
        diags.report("include-error" if at else "file-error", str(exc), at)
        return None
    return parse_text(source, diags)


def parse_text(source: Source, diags: Diagnostics) -> ast.Module | None:
    tree, comments = parse_source(source, diags)
    if tree is None:
        return None
    return to_ast(tree, source.name, comments, diags)


def load_modules(path: Path, diags: Diagnostics, name: str | None = None) -> list[ast.Module]:
    """The main module and everything it includes, included files first (depth-first, each once)."""
    modules: list[ast.Module] = []
    _load(path.resolve(), diags, modules, stack=[], done=set(), at=None, name=name)
    return modules


def _load(path: Path, diags: Diagnostics, modules: list[ast.Module], stack: list[Path],
          done: set[Path], at: Span | None, name: str | None = None) -> None:
    if path in stack:
        chain = " -> ".join(display_path(p) for p in [*stack[stack.index(path):], path])
        diags.report("include-cycle", f"include cycle: {chain}", at)
        return
    if path in done:
        return
    if len(stack) > MAX_INCLUDE_DEPTH:
        diags.report("include-error", f"includes nested deeper than {MAX_INCLUDE_DEPTH} levels: "
                     f"{display_path(path)} is not read", at)
        return
    module = parse_file(path, diags, name=name, at=at)
    if module is None:
        return
    for include in module.includes:
        target = (path.parent / include.path.value).resolve()
        _load(target, diags, modules, [*stack, path], done, include.path.span)
    done.add(path)
    modules.append(module)


def run_frontend(path: Path, overrides: list[str] | None = None, *, check_files: bool = True) -> Frontend:
    """Parse, include, override, resolve and check one spec; never raises on user errors."""
    diags = Diagnostics()
    result = Frontend(path=display_path(path), diags=diags)
    result.modules = load_modules(path, diags, display_path(path))
    if diags.has_errors() or not result.modules:
        return result
    modules = apply_overrides(result.modules, overrides or [], diags)
    ir = resolve(modules, result.modules[-1].file, diags)
    if not ir.pipeline:
        first = modules[-1].decls[0].span if modules[-1].decls else None
        diags.report("missing-field", "the spec declares no `pipeline NAME { … }`", first,
                     notes=[Note("add e.g. `pipeline my_domain { seed = 42 }` at the top")])
    run_checks(ir, diags, check_files=check_files)
    result.ir = ir
    return result

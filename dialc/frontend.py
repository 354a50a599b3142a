"""A spec path (+ --set overrides) → parsed modules with includes → IR → checked IR, with diagnostics."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dialc import syntax as ast
from dialc.checks import run_checks
from dialc.diagnostics import Diagnostics, Note
from dialc.ir import IR
from dialc.overrides import apply_overrides
from dialc.resolve import resolve
from dialc.security import PathPolicy, allowed_paths, reading_policy
from dialc.source import Source, SourceError, Span, read_source
from dialc.transformer import parse_to_ast

MAX_INCLUDE_DEPTH = 32
SPEC_SUFFIX = ".dial"  # a file named otherwise that fails to parse has its contents withheld from messages


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
    before = len(diags.items)
    module = parse_text(source, diags)
    if not shown.endswith(SPEC_SUFFIX) and any(d.severity == "error" for d in diags.items[before:]):
        _withhold(diags, before, source, at)
    return module


def _withhold(diags: Diagnostics, before: int, source: Source, at: Span | None) -> None:
    """A file that is not named .dial and does not parse (a .env, a key file): say where, never show what
    is in it (no source line, no token text), in one message at its include."""
    first = next(d for d in diags.truncate(before) if d.severity == "error")
    where = f"line {first.span.line}, column {first.span.col}" if first.span else "its start"
    diags.sources.pop(source.name, None)
    diags.report("syntax", f"{source.name} does not parse as a .dial spec (first error at {where}); the contents "
                 "of a file that is not a spec are never shown (name it .dial to see them)",
                 at or Span(file=source.name, line=1, col=1, end_line=1, end_col=2))


def parse_text(source: Source, diags: Diagnostics) -> ast.Module | None:
    return parse_to_ast(source, diags)


def load_modules(path: Path, diags: Diagnostics, name: str | None = None) -> list[ast.Module]:
    """The main module and everything it includes, included files first (depth-first, each once)."""
    modules: list[ast.Module] = []
    _load(resolved(path), diags, modules, stack=[], done=set(), at=None, name=name)
    return modules


def resolved(path: Path) -> Path:
    """The absolute path with symlinks resolved; a symlink loop stays as written (reading it says so)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python 3.11's "Symlink loop from …"
        return Path(os.path.abspath(path))


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
        target = resolved(path.parent / include.path.value)
        _load(target, diags, modules, [*stack, path], done, include.path.span)
    done.add(path)
    modules.append(module)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: syntax nodes, IR and plans hold no reference cycles, so on a big
    spec its full collections (at every ~25% growth of the heap) only cost time, nearly half of it at
    10,000 tasks (bench/bench_compile.py). The cycles a run may leave are collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def run_frontend(path: Path, overrides: list[str] | None = None, *, check_files: bool = True,
                 allow: Sequence[Path] | None = None) -> Frontend:
    """Parse, include, override, resolve and check one spec; never raises on user errors. Every file it
    reads stays inside the spec's project or an `allow` folder (dialc.security; default: --allow-path)."""
    policy = PathPolicy.for_spec(path, allowed_paths() if allow is None else allow)
    with paused_gc(), reading_policy(policy):
        return _run_frontend(path, overrides, check_files)


def _run_frontend(path: Path, overrides: list[str] | None, check_files: bool) -> Frontend:
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

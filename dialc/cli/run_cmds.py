"""Runtime commands (run, status, show, review, report, calibrate) → runtime calls, each importing the runtime when run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from dialc.cli.common import RunDirOption, SetOption, SpecArg, load_plan

EXIT_BLOCKED = 3  # stopped at a gate: a human review is pending or a data test (expect) failed


def run(
    spec: SpecArg,
    overrides: SetOption = None,
    select: Annotated[list[str] | None, typer.Option("--select", "-S", help="Run part of the DAG: NAME, +NAME "
                                                     "(with ancestors), NAME+ (with descendants).")] = None,
    recompute: Annotated[list[str] | None, typer.Option("--recompute", help="Force these selected steps to "
                                                        "run again even if cached.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run, what is cached and the "
                                          "estimated model calls and tokens.")] = False,
    run_dir: RunDirOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Compile and execute a spec: cached, resumable (run it again after Ctrl-C), with a report at the end.

    Exit status: 0 done, 1 a step failed, 3 stopped at a gate (review pending or an expect failed)."""
    # torch's OpenMP threads spin while waiting; on a shared CPU that costs 4x (bench/bench_backend.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rich.console import Console

    from dialc_runtime.errors import SelectionError
    from dialc_runtime.engine.executor import execute

    plan = load_plan(spec, overrides)
    target = run_dir or Path(plan.settings["output"])
    console = Console(stderr=True)
    try:
        results = execute(plan, target, select=select, recompute=recompute, dry_run=dry_run, console=console,
                          quiet=quiet)
    except SelectionError as exc:
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print_results(results, console)
    if not dry_run:
        _write_report(target, console)
    if not results.ok:
        raise typer.Exit(1)
    if results.by_status("blocked"):
        raise typer.Exit(EXIT_BLOCKED)


def _print_results(results: Any, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{results.pipeline}: {'dry run' if results.dry_run else 'run'} in {results.seconds:.1f}s",
                  title_justify="left")
    for column in ("step", "status", "seconds", "records", "model calls", "tokens"):
        table.add_column(column, justify="left" if column in ("step", "status") else "right")
    for step in results.steps:
        tokens = step.prompt_tokens + step.completion_tokens
        if results.dry_run and step.estimate:
            tokens = int(step.estimate.get("tokens", 0))
        table.add_row(step.id, step.status, f"{step.seconds:.1f}", str(step.records), str(step.model_calls),
                      str(tokens))
    console.print(table)
    for step in results.steps:
        line = step.diagnostic()
        if line:
            console.print(line, markup=False, highlight=False)


def _write_report(run_dir: Path, console: Any) -> None:
    try:
        from dialc_runtime.report.page import write_report
    except ImportError:
        return
    path = write_report(run_dir)
    if path is not None:
        from dialc_runtime.report.page import summary_table

        console.print(summary_table(run_dir))
        console.print(f"report: {path}", markup=False, highlight=False)


def status(spec: SpecArg, overrides: SetOption = None, run_dir: RunDirOption = None) -> None:
    """Show which steps are done, cached, stale or pending, without running anything."""
    from rich.console import Console
    from rich.table import Table

    from dialc_runtime.engine.executor import status as step_status

    plan = load_plan(spec, overrides)
    rows = step_status(plan, run_dir or Path(plan.settings["output"]))
    table = Table(title=f"{plan.pipeline}: status", title_justify="left")
    for column in ("step", "state", "records", "last run", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.id, row.state, str(row.records), row.last_status or "-", row.message)
    Console().print(table)


def show(
    record_id: Annotated[str, typer.Argument(help="A record id (e.g. prompts-000003) or STEP_ID:KEY.")],
    run_dir: RunDirOption = None,
) -> None:
    """Print one record with its full lineage (dialogue, task chain, expression, model, scores, verdict)."""
    from dialc_runtime.engine.store import find_record

    candidates = [run_dir] if run_dir else sorted(p for p in Path("runs").glob("*") if p.is_dir())
    for directory in candidates:
        found = find_record(directory, record_id)
        if found is not None:
            step_id, record = found
            typer.echo(f"# {record_id} from {step_id} in {directory}", err=True)
            typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
            return
    where = ", ".join(str(c) for c in candidates) or "no run directory under runs/"
    typer.echo(f"dialc: error: record {record_id!r} not found (searched {where})", err=True)
    raise typer.Exit(1)


def review(
    file: Annotated[Path, typer.Argument(help="A review file written by an evolve step.")],
    accept_all: Annotated[bool, typer.Option("--accept-all", help="Accept every pending candidate.")] = False,
    reject_all: Annotated[bool, typer.Option("--reject-all", help="Reject every pending candidate.")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="Only list candidates and decisions.")] = False,
) -> None:
    """Screen evolved tasks: accept, reject or edit each pending candidate; saved after every decision."""
    from dialc.review_ui import review_file

    raise typer.Exit(review_file(file, accept_all=accept_all, reject_all=reject_all, list_only=list_only))


def report(spec: SpecArg, overrides: SetOption = None, run_dir: RunDirOption = None) -> None:
    """Write the run's self-contained HTML report (scores, balance, cost, examples, before/after) and a summary."""
    from rich.console import Console

    from dialc_runtime.report.page import summary_table, write_report

    plan = load_plan(spec, overrides)
    target = run_dir or Path(plan.settings["output"])
    path = write_report(target)
    if path is None:
        typer.echo(f"dialc: error: no run results in {target}; run `dialc run {spec}` first", err=True)
        raise typer.Exit(1)
    console = Console()
    console.print(summary_table(target))
    console.print(f"report: {path}", markup=False, highlight=False)


def calibrate(
    spec: SpecArg,
    human: Annotated[Path, typer.Option("--human", help="Human ratings: JSONL or CSV rows of {id, DIMENSION: "
                                        "score, …} for some record ids.")],
    overrides: SetOption = None,
    scale: Annotated[str | None, typer.Option("--scale", help="The human rating scale, e.g. 1..5 "
                                              "(default: the judge's scale).")] = None,
    run_dir: RunDirOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Compare each quality dimension with human ratings: Spearman rank correlation and agreement."""
    import dataclasses

    from rich.console import Console

    from dialc_runtime.quality.calibrate import CalibrationError, parse_scale, render
    from dialc_runtime.quality.calibrate import calibrate as compare

    plan = load_plan(spec, overrides)
    try:
        bounds = parse_scale(scale) if scale else None
    except ValueError as exc:
        typer.echo(f"dialc: error: --scale: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        result = compare(run_dir or Path(plan.settings["output"]), human, bounds)
    except CalibrationError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from exc
    if json_out:
        typer.echo(json.dumps(dataclasses.asdict(result), indent=2, ensure_ascii=False, default=str))
    else:
        Console().print(render(result))


# (name, function) in the order `dialc --help` lists them, after the compiler commands
COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("run", run), ("status", status), ("show", show), ("review", review), ("report", report),
    ("calibrate", calibrate),
]

"""Runtime commands (run, status, show, review, report, calibrate) → runtime calls; the runtime loads when one runs."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from dialc.cli.common import AllowPathOption, RunDirOption, SetOption, SpecArg, load_plan

EXIT_BLOCKED = 3  # stopped at a gate: a human review is pending or a data test (expect) failed


def run(
    spec: SpecArg,
    overrides: SetOption = None,
    select: Annotated[list[str] | None, typer.Option("--select", "-S", help="Run part of the DAG: NAME, +NAME "
                                                     "(with ancestors), NAME+ (with descendants).")] = None,
    recompute: Annotated[list[str] | None, typer.Option("--recompute", help="Force these selected steps to "
                                                        "run again even if cached.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would run, what is cached and the "
                                          "estimated model calls, tokens and time (≈, for the embedded "
                                          "model on CPU).")] = False,
    run_dir: RunDirOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    allow_path: AllowPathOption = None,
    rebuild_store: Annotated[bool, typer.Option("--rebuild-store", help="Move a damaged store.sqlite aside and "
                                                "rebuild it from the step outputs that still verify; the "
                                                "others run again.")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local (default: this process) or ray (record-level "
                                        "steps on a Ray cluster; pip install \"dialc[ray]\").")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="--engine ray: the cluster to join (e.g. "
                                                "ray://head:10001 or auto); default: start a local one.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="--engine ray: actors per model "
                                                "(default: one per GPU, or per CPU, of the cluster).")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Steps run at once where they share no model "
                                      "(e.g. rule and dedup dimensions while a judge runs; those that call no "
                                      "model in child processes, on other cores); 1: one at a time, here.")] = 2,
) -> None:
    """Compile and execute a spec: cached, resumable (run it again after Ctrl-C), with a report at the end.

    Exit status: 0 done, 1 a step failed, 2 usage or internal error, 3 stopped at a gate (a review is
    pending or an expect data test failed; the steps below it are blocked, not failed)."""
    # torch's OpenMP threads spin while waiting; on a shared CPU that costs 4x (bench/bench_backend.py)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from rich.console import Console

    from dialc_runtime.engine.engines import make_engine
    from dialc_runtime.engine.executor import execute
    from dialc_runtime.errors import RunRefused, SelectionError
    from dialc_runtime.secrets import key_destinations

    plan = load_plan(spec, overrides)
    target = run_dir or plan.run_dir()
    console = Console(stderr=True)
    for line in key_destinations(plan):  # where each API key goes, said before any request is sent
        console.print(line, markup=False, highlight=False)
    try:
        runner = make_engine(engine, address, workers, plan=None if dry_run else plan)
    except ValueError as exc:  # an unknown engine, Ray not installed, a model the engine cannot run (vllm)
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        results = execute(plan, target, select=select, recompute=recompute, dry_run=dry_run, console=console,
                          quiet=quiet, rebuild_store=rebuild_store, engine=runner, jobs=jobs)
    except (SelectionError, RunRefused) as exc:  # a bad selector, a locked run directory, a damaged store
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        runner.close()
    _print_results(results, console)
    if not dry_run:
        _write_report(target, console)
        _print_outputs(target, console)
    if not results.ok:
        raise typer.Exit(1)
    gates = [s.id for s in results.steps if s.status == "blocked" and not s.blocked_by]
    if gates:
        below = len(results.by_status("blocked")) - len(gates)
        console.print(f"stopped at a gate: {', '.join(gates)} blocked ({below} step(s) below wait for it); "
                      f"exit {EXIT_BLOCKED}", markup=False, highlight=False)
        raise typer.Exit(EXIT_BLOCKED)


def _print_results(results: Any, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"{results.pipeline}: {'dry run' if results.dry_run else 'run'} in {results.seconds:.1f}s",
                  title_justify="left")
    for column in ("step", "status", "seconds", "records", "model calls", "tokens"):
        table.add_column(column, justify="left" if column in ("step", "status") else "right")
    for step in results.steps:
        tokens, calls, seconds = step.prompt_tokens + step.completion_tokens, step.model_calls, f"{step.seconds:.1f}"
        if results.dry_run and step.estimate:  # what it would cost: estimates, marked ≈
            tokens, calls = int(step.estimate.get("tokens", 0)), int(step.estimate.get("model_calls", 0))
            seconds = f"≈{float(step.estimate.get('seconds', 0)):.0f}"
        table.add_row(step.id, step.status, seconds, str(step.records), str(calls), str(tokens))
    console.print(table)
    for step in results.steps:
        line = step.diagnostic()
        if line:
            console.print(line, markup=False, highlight=False)
    console.print(_cost_line(results), markup=False, highlight=False)


def _cost_line(results: Any) -> str:
    """Dry run: the estimated totals; run: this invocation's cost and, apart, what the data cost when made."""
    totals = results.totals()
    if results.dry_run:
        est = [s.estimate or {} for s in results.steps]
        seconds = sum(float(e.get("seconds", 0)) for e in est)
        return (f"estimated: {totals['estimate']['model_calls']} model calls, {totals['estimate']['tokens']} tokens, "
                f"≈{seconds / 60:.0f} min (embedded 135M model on 2 CPU cores; a GPU is much faster, a larger model "
                "slower; completions counted at max_tokens)")
    made = totals["made"]
    return (f"this run: {results.seconds:.1f} s, {totals['model_calls']} model calls, "
            f"{totals['prompt_tokens'] + totals['completion_tokens']} tokens; the data it produced or reused cost "
            f"{made['seconds']:.1f} s, {made['model_calls']} model calls, {made['tokens']} tokens when made")


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


def _print_outputs(run_dir: Path, console: Any, current: dict[str, str | None] | None = None) -> None:
    """The named outputs (outputs/<name> → the current export and adapter folders), one line each;
    `current` (step id → its key for the spec now) marks those the spec has changed since they were made."""
    from dialc_runtime.engine.outputs import output_lines, read_outputs

    outputs = read_outputs(run_dir)
    if not outputs:
        return
    console.print("outputs:", markup=False, highlight=False)
    for output, line in zip(outputs, output_lines(run_dir, outputs), strict=True):
        if current is not None and current.get(output.step_id) != output.key:
            line += "  (made by the last run; the spec has changed since)"
        console.print(line, markup=False, highlight=False, soft_wrap=True)


def status(spec: SpecArg, overrides: SetOption = None, run_dir: RunDirOption = None,
           allow_path: AllowPathOption = None) -> None:
    """Show which steps are done, cached, stale or pending, without running anything."""
    from rich.console import Console
    from rich.table import Table

    from dialc_runtime.engine.executor import status as step_status
    from dialc_runtime.errors import RunRefused

    plan = load_plan(spec, overrides)
    try:
        rows = step_status(plan, run_dir or plan.run_dir())
    except RunRefused as exc:  # a damaged store: explained, with the way out
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(2) from exc
    table = Table(title=f"{plan.pipeline}: status", title_justify="left")
    for column in ("step", "state", "records", "last run", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(row.id, row.state, str(row.records), row.last_status or "-", row.message)
    console = Console()
    console.print(table)
    current = {row.id: row.key for row in rows if row.state in ("done", "cached")}  # the spec's output is made
    _print_outputs(run_dir or plan.run_dir(), console, current)


def show(
    record_id: Annotated[str | None, typer.Argument(help="A record id (e.g. prompts-000003) or STEP_ID:KEY; "
                                                    "without one, the run's named outputs are listed.")] = None,
    spec: Annotated[Path | None, typer.Option("--spec", help="Search the run of this spec (default: every "
                                              "run under runs/ and */runs/).")] = None,
    overrides: SetOption = None,
    run_dir: RunDirOption = None,
) -> None:
    """Print one record with its full lineage (dialogue, task chain, expression, model, scores, verdict), or,
    without a record id, the named outputs (outputs/<name>) of the run."""
    from dialc_runtime.engine.store import find_record

    candidates = [run_dir] if run_dir else [load_plan(spec, overrides).run_dir()] if spec else sorted(
        p for pattern in ("runs/*", "*/runs/*") for p in Path().glob(pattern) if p.is_dir())
    from dialc_runtime.errors import RunRefused

    if record_id is None:
        _show_outputs(candidates)
        return

    for directory in candidates:
        try:
            found = find_record(directory, record_id)
        except RunRefused as exc:
            typer.echo(f"dialc: error: {exc}", err=True)
            raise typer.Exit(2) from exc
        if found is not None:
            step_id, record = found
            typer.echo(f"# {record_id} from {step_id} in {directory}", err=True)
            typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
            return
    where = ", ".join(str(c) for c in candidates) or "no run directory under runs/ or */runs/"
    typer.echo(f"dialc: error: record {record_id!r} not found (searched {where})", err=True)
    raise typer.Exit(1)


def _show_outputs(run_dirs: list[Path]) -> None:
    """`dialc show` without a record: each run's named outputs (exit 1 when no run has any)."""
    from rich.console import Console

    from dialc_runtime.engine.outputs import read_outputs

    console, found = Console(), False
    for directory in run_dirs:
        if read_outputs(directory):
            found = True
            console.print(f"# {directory}", markup=False, highlight=False)
            _print_outputs(directory, console)
    if not found:
        where = ", ".join(str(d) for d in run_dirs) or "no run directory under runs/ or */runs/"
        typer.echo(f"dialc: error: no named outputs (searched {where}); `dialc run SPEC` writes them", err=True)
        raise typer.Exit(1)


def clean(spec: SpecArg, overrides: SetOption = None, run_dir: RunDirOption = None,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
          allow_path: AllowPathOption = None) -> None:
    """Remove the cache entries (records, completed steps, artifact folders) no step of the spec refers to,
    then VACUUM the store; what the spec's steps use stays cached. Refused while a run holds the directory."""
    from dialc_runtime.engine.clean import clean as clean_run_dir
    from dialc_runtime.errors import RunRefused

    plan = load_plan(spec, overrides)
    try:
        report = clean_run_dir(plan, run_dir or plan.run_dir(), dry_run=dry_run)
    except RunRefused as exc:  # a run holds the lock, a damaged store, keys that cannot be computed
        typer.echo(f"dialc: error: {exc}", err=True)
        raise typer.Exit(2) from exc
    for line in report.lines():
        typer.echo(line)


def review(
    file: Annotated[Path, typer.Argument(help="A review file written by an evolve step.")],
    accept_all: Annotated[bool, typer.Option("--accept-all", help="Accept every pending candidate.")] = False,
    reject_all: Annotated[bool, typer.Option("--reject-all", help="Reject every pending candidate.")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="Only list candidates and decisions.")] = False,
    web: Annotated[bool, typer.Option("--web", help="Review in a local web page (127.0.0.1, a secret token "
                                      "in its URL) until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port of --web (0: any free one).")] = 0,
    no_open: Annotated[bool, typer.Option("--no-open", help="With --web: print the URL, open no browser.")] = False,
) -> None:
    """Screen evolved tasks: accept, reject or edit each pending candidate; saved after every decision.

    In the terminal, `e` edits in $EDITOR when it is set. Exit status: 0 nothing pending (with --list:
    always 0, and the last line counts the pending ones), 1 the file is missing or unreadable,
    3 candidates are still pending (the run's gate stays closed); --web: 2 the port cannot be used."""
    if web:
        from dialc.review_web import serve

        raise typer.Exit(serve(file, port, open_browser=not no_open))
    from dialc.review_ui import review_file

    raise typer.Exit(review_file(file, accept_all=accept_all, reject_all=reject_all, list_only=list_only))


def report(spec: SpecArg, overrides: SetOption = None, run_dir: RunDirOption = None,
           allow_path: AllowPathOption = None) -> None:
    """Write the run's self-contained HTML report (scores, balance, cost, examples, before/after) and a summary."""
    from rich.console import Console

    from dialc_runtime.report.page import summary_table, write_report

    plan = load_plan(spec, overrides)
    target = run_dir or plan.run_dir()
    path = write_report(target)
    if path is None:
        typer.echo(f"dialc: error: no run results in {target}; run `dialc run {spec}` first", err=True)
        raise typer.Exit(1)
    console = Console()
    console.print(summary_table(target))
    console.print(f"report: {path}", markup=False, highlight=False)


def calibrate(
    spec: SpecArg,
    human: Annotated[Path | None, typer.Option("--human", help="Human ratings: JSONL or CSV rows of {id, "
                                               "DIMENSION: score, …} for some record ids.")] = None,
    gold: Annotated[bool, typer.Option("--gold", help="No human ratings: the labeller answers a gold test set, "
                                       "the quality dimensions score the answers, and each score is compared "
                                       "with their correctness against the references.")] = False,
    testset: Annotated[str | None, typer.Option("--testset", help="--gold: the test set (default: the quality "
                                                "block's `calibrate`, else the only one declared).")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="--gold: gold dialogues labelled at most "
                                              "(a seeded sample; 0 = all).")] = None,
    overrides: SetOption = None,
    scale: Annotated[str | None, typer.Option("--scale", help="The human rating scale, e.g. 1..5 "
                                              "(default: the judge's scale).")] = None,
    run_dir: RunDirOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    allow_path: AllowPathOption = None,
) -> None:
    """Compare each quality dimension with human ratings (--human: Spearman rank correlation and agreement) or
    with correctness against a gold test set (--gold: Spearman, AUC, precision of kept vs rejected labels)."""
    import dataclasses

    from rich.console import Console

    from dialc_runtime.quality.calibrate import CalibrationError, parse_scale, render
    from dialc_runtime.quality.calibrate import calibrate as compare

    if gold == (human is not None):
        typer.echo("dialc: error: give one of --human FILE (human ratings) and --gold (a gold test set)", err=True)
        raise typer.Exit(2)
    if human is None:
        _calibrate_gold(spec, overrides or [], testset, limit, run_dir, json_out)
        return
    plan = load_plan(spec, overrides)
    try:
        bounds = parse_scale(scale) if scale else None
    except ValueError as exc:
        typer.echo(f"dialc: error: --scale: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        result = compare(run_dir or plan.run_dir(), human, bounds)
    except CalibrationError as exc:
        for line in exc.problems:
            typer.echo(line, err=True)
        raise typer.Exit(1) from exc
    if json_out:
        typer.echo(json.dumps(dataclasses.asdict(result), indent=2, ensure_ascii=False, default=str))
    else:
        Console().print(render(result))


def _calibrate_gold(spec: Path, overrides: list[str], testset: str | None, limit: int | None, run_dir: Path | None,
                    json_out: bool) -> None:
    """The quality block's `calibrate` step (declared, or added for the named test set): its figures from the
    run when it ran with these settings, else measured now (nothing is written)."""
    from rich.console import Console

    from dialc.cli.common import front
    from dialc.plan import resolve_paths
    from dialc_runtime.engine.context import BackendPool
    from dialc_runtime.evaluate.quality_gold import figures, render, run_check, stored_figures

    ir = front(spec, overrides).ir
    assert ir is not None
    qualities, testsets = ir.of_kind("quality"), [t.name for t in ir.of_kind("testset")]
    declared = [q for q in qualities if (q.fields.get("calibrate") or {}).get("gold") is not None]
    extra = []
    if testset is not None or not declared:
        name = testset or (testsets[0] if len(testsets) == 1 else None)
        why = ("the spec declares no testset" if not testsets else f"name one with --testset ({', '.join(testsets)})"
               if name is None else "the spec has several quality blocks: declare `calibrate = gold(NAME)` in one"
               if len(qualities) != 1 else "")
        if why:
            typer.echo(f"dialc: error: --gold: {why}", err=True)
            raise typer.Exit(2)
        extra.append(f"quality.calibrate=gold({name})")
    if limit is not None:
        extra.append(f"quality.calibrate_limit={limit}")
    plan = load_plan(spec, [*overrides, *extra])
    step = next(s for s in plan.steps if s.kind == "calibrate")
    console = Console(stderr=True)
    shown = stored_figures(run_dir or plan.run_dir(), step)
    if shown is None:
        console.print(f"measuring {step.id} now (the run has no result for these settings): the labeller "
                      "answers every gold item", markup=False, highlight=False)
        params = resolve_paths(step.params, plan.spec_dir())
        shown = figures(run_check(params, BackendPool().get))  # type: ignore[arg-type]
    else:
        console.print(f"from the run's {step.id} (same settings)", markup=False, highlight=False)
    typer.echo(json.dumps(shown, indent=2, ensure_ascii=False) if json_out else render(shown))


# (name, function) in the order `dialc --help` lists them, after the compiler commands
COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("run", run), ("status", status), ("show", show), ("review", review), ("report", report),
    ("calibrate", calibrate), ("clean", clean),
]

"""`dialc validate` wall time, and generated specs of growing size → time of validate (front end) and compile (plan).

    python bench/bench_compile.py [--sizes 100 1000 10000] [--repeat 3] [--runs 9] [--profile 10000]

First the editor's view: `dialc validate specs/realestate.dial` as a fresh process (median of --runs),
against `python -c "import lark"` measured in the same run (a floor: an interpreter that loads one
small library); the target is under 150 ms. Bytecode caches are written by a warm-up run first, as
pip writes them at install time, so both sides measure loading, not compiling.

Then each generated spec has N tasks and, per 100 tasks, one model, source, expression set, evolve,
sample, label, quality block (with dimensions), fine-tune and evaluation, plus N/10 scenarios: the
shape of a real spec, scaled. Validate and compile run in-process (best of --repeat); time per task
should stay roughly flat as N grows (linear cost), and a ratio to the 100-task case well above 1 at
10,000 tasks means some phase is super-linear: rerun with --profile. The last columns give each time
as a multiple of the `import lark` baseline; the target for validating 10,000 tasks is under 5 s.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialc.compiler import compile_plan  # noqa: E402
from dialc.frontend import Frontend, paused_gc, run_frontend  # noqa: E402

DATA = ROOT / "data" / "realestate" / "dialogues.jsonl"
CATEGORIES = ("information_extraction", "summarization", "reply_generation", "analysis", "classification")


def task(i: int, scenarios: int) -> str:
    output = (f"output {{\n    budget_{i}: int? [0..100_000_000]\n    district: str? (max 40)\n  }}"
              if i % 3 == 0 else "output = text(max = 300)")
    return (f"task t{i} {{\n  category = {CATEGORIES[i % len(CATEGORIES)]}\n"
            f'  instruction = "Task number {i}: extract what the customer wants, in one sentence."\n'
            f"  {output}\n  weight = {1 + i % 3}\n  scenarios = [sc{i % scenarios}]\n}}\n")


def group(g: int) -> str:
    """One slice of the pipeline, per 100 tasks: every kind of step once."""
    return f"""
model m{g} {{ path = "builtin:smollm2-135m-instruct"  temperature = 0.7 }}
source s{g} {{ path = "{DATA.name}"  roles = [agent, customer] }}
expressions e{g} {{ tone = {{formal: 2, friendly: 2, terse: 1}}  persona = {{"new agent": 1, boss: 1}} }}
evolve ev{g} {{ from = tasks  model = m{g}  rounds = 1  per_round = 4 }}
sample p{g} {{
  from = s{g} * ev{g} * e{g}
  count = 24
  balance = [scenario, category]
  template = "As a {{persona}}, in a {{tone}} tone: {{instruction}}\\n{{dialogue}}"
}}
label l{g} {{ from = p{g}  model = m{g} }}
quality q{g} {{
  from = l{g}
  dimension valid rule {{ check = schema  gate = true }}
  dimension grounded grounding {{ min = 0.3 }}
  dimension helpful judge {{ model = m{g}  rubric = "Is it useful?" }}
  dimension novel dedup {{ threshold = 0.85 }}
  keep when score >= 0.4 and valid >= 1
  expect kept_rate >= 0.2
}}
finetune f{g} {{ base = m{g}  data = q{g}  method = lora {{ r = 8  alpha = 16 }} }}
evaluate v{g} {{ model = f{g}  domain = holdout(0.2)  general = [suite("builtin:general-probe")] }}
"""


def spec_text(tasks: int) -> str:
    scenarios = max(1, tasks // 10)
    entries = "\n".join(f'  sc{i} "Scenario number {i}" weight {1 + i % 3}' for i in range(scenarios))
    parts = ["pipeline bench { seed = 42 }\n", f"scenarios {{\n{entries}\n}}\n"]
    parts += [group(g) for g in range(max(1, tasks // 100))]
    parts += [task(i, scenarios) for i in range(tasks)]
    return "\n".join(parts)


def write_spec(folder: Path, tasks: int) -> Path:
    """The generated spec with its data file beside it: a spec reads only inside its own project."""
    shutil.copyfile(DATA, folder / DATA.name)
    path = folder / f"bench_{tasks}.dial"
    path.write_text(spec_text(tasks), encoding="utf-8")
    return path


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def measure(path: Path, repeat: int) -> tuple[float, float, int]:
    """(validate seconds, compile seconds, plan steps); raises if the spec has errors."""
    validate_s, front = best_of(repeat, lambda: run_frontend(path))
    assert isinstance(front, Frontend) and front.ir is not None
    errors = [d for d in front.diags.items if d.severity == "error"]
    if errors:
        raise SystemExit(f"generated spec has errors: {errors[:3]}")
    ir = front.ir
    compile_s, plan = best_of(repeat, lambda: compile_quietly(ir, front.path))
    return validate_s, compile_s, len(plan.steps)  # type: ignore[attr-defined]


def compile_quietly(ir: object, path: str) -> object:
    """compile_plan as `dialc compile` runs it: with the cyclic garbage collector paused."""
    with paused_gc():
        return compile_plan(ir, path)  # type: ignore[arg-type]


def profile(path: Path) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    front = run_frontend(path)
    assert front.ir is not None
    compile_plan(front.ir, front.path)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def wall_ms(argv: list[str], runs: int) -> tuple[float, float]:
    """Median (wall, CPU) milliseconds of a fresh process, after one warm-up run that writes bytecode caches.

    CPU time (user + system) barely moves when other work shares the cores; wall time does."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    walls, cpus = [], []
    for _ in range(runs + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return statistics.median(walls[1:]) * 1000, statistics.median(cpus[1:]) * 1000


def dialc_command() -> list[str]:
    """The installed `dialc` script next to this interpreter (what users run), else `python -m dialc`."""
    script = Path(sys.executable).with_name("dialc")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dialc"]


def report_wall(runs: int) -> float:
    """Print validate's wall time on the shipped spec against the `import lark` baseline; return the baseline (ms)."""
    lark_ms, lark_cpu = wall_ms([sys.executable, "-c", "import lark"], runs)
    validate_ms, validate_cpu = wall_ms([*dialc_command(), "validate", "specs/realestate.dial"], runs)
    print(f'python -c "import lark": {lark_ms:.0f} ms wall, {lark_cpu:.0f} ms CPU (medians of {runs})')
    print(f"dialc validate specs/realestate.dial: {validate_ms:.0f} ms wall, {validate_cpu:.0f} ms CPU (medians of "
          f"{runs}), {validate_ms / lark_ms:.2f}x import lark (target: under 150 ms wall)\n", flush=True)
    return lark_ms


def report_sizes(sizes: list[int], repeat: int, lark_ms: float, tmp: str) -> None:
    run_frontend(ROOT / "specs" / "realestate.dial")  # warm up: build the parsers once
    print(f"{'tasks':>7} {'steps':>6} {'KiB':>6} | {'validate s':>10} {'µs/task':>8} {'ratio':>5} {'/lark':>6} |"
          f" {'compile s':>9} {'µs/task':>8} {'ratio':>5} {'/lark':>6}")
    base: tuple[float, float] | None = None
    lark_s = lark_ms / 1000
    for n in sizes:
        path = write_spec(Path(tmp), n)
        validate_s, compile_s, steps = measure(path, repeat)
        per = (validate_s / n * 1e6, compile_s / n * 1e6)
        base = base or per
        print(f"{n:>7} {steps:>6} {path.stat().st_size // 1024:>6} | {validate_s:>10.3f} {per[0]:>8.0f}"
              f" {per[0] / base[0]:>5.2f} {validate_s / lark_s:>6.1f} | {compile_s:>9.3f} {per[1]:>8.0f}"
              f" {per[1] / base[1]:>5.2f} {compile_s / lark_s:>6.1f}", flush=True)
    biggest = Path(tmp) / f"bench_{sizes[-1]}.dial"
    wall, cpu = wall_ms([*dialc_command(), "validate", str(biggest)], 3)
    print(f"\ndialc validate <{sizes[-1]}-task spec>: {wall / 1000:.2f} s wall, {cpu / 1000:.2f} s CPU (medians of 3), "
          f"{wall / lark_ms:.1f}x import lark (target at 10,000 tasks: under 5 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="in-process runs per size (best is shown)")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per wall-time figure (median)")
    parser.add_argument("--profile", type=int, metavar="TASKS", help="profile one run at this size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            profile(write_spec(Path(tmp), args.profile))
            return
        lark_ms = report_wall(max(7, args.runs))
        report_sizes(args.sizes, args.repeat, lark_ms, tmp)


if __name__ == "__main__":
    main()

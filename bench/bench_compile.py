"""Generated specs of growing size → time of validate (front end) and compile (plan), per task.

    python bench/bench_compile.py [--sizes 100 1000 10000] [--repeat 3] [--profile 10000]

Each spec has N tasks and, per 100 tasks, one model, source, expression set, evolve, sample, label,
quality block (with dimensions), fine-tune and evaluation, plus N/10 scenarios: the shape of a real
spec, scaled. Time per task should stay roughly flat as N grows (linear cost); a ratio to the
100-task case well above 1 at 10,000 tasks means some phase is super-linear: rerun with --profile.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialc.compiler import compile_plan  # noqa: E402
from dialc.frontend import Frontend, run_frontend  # noqa: E402

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
source s{g} {{ path = "{DATA.as_posix()}"  roles = [agent, customer] }}
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
    compile_s, plan = best_of(repeat, lambda: compile_plan(ir, front.path))
    return validate_s, compile_s, len(plan.steps)  # type: ignore[attr-defined]


def profile(path: Path) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    front = run_frontend(path)
    assert front.ir is not None
    compile_plan(front.ir, front.path)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, metavar="TASKS", help="profile one run at this size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            path = Path(tmp) / f"bench_{args.profile}.dial"
            path.write_text(spec_text(args.profile), encoding="utf-8")
            profile(path)
            return
        run_frontend(ROOT / "specs" / "realestate.dial")  # warm up: build the parsers once
        print(f"{'tasks':>7} {'steps':>6} {'KiB':>6} | {'validate s':>10} {'µs/task':>8} {'ratio':>5} |"
              f" {'compile s':>9} {'µs/task':>8} {'ratio':>5}")
        base: tuple[float, float] | None = None
        for n in args.sizes:
            path = Path(tmp) / f"bench_{n}.dial"
            path.write_text(spec_text(n), encoding="utf-8")
            validate_s, compile_s, steps = measure(path, args.repeat)
            per = (validate_s / n * 1e6, compile_s / n * 1e6)
            base = base or per
            print(f"{n:>7} {steps:>6} {path.stat().st_size // 1024:>6} | {validate_s:>10.3f} {per[0]:>8.0f}"
                  f" {per[0] / base[0]:>5.2f} | {compile_s:>9.3f} {per[1]:>8.0f} {per[1] / base[1]:>5.2f}",
                  flush=True)


if __name__ == "__main__":
    main()

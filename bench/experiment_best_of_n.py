"""Best-of-N vs a single label against gold, and whether each quality dimension predicts correctness.

    python bench/experiment_best_of_n.py [--spec specs/realestate.dial] [--limit 40] [--candidates 4]
                                         [--tasks extract_requirements,customer_intent] [--json out.json]

The spec's labeller answers `--limit` gold dialogues of its first test set (a seeded sample; 0 = all)
`--candidates` times per item, exactly as `label { candidates = N }` and `quality { calibrate = gold(…) }`
would (same prompts, seeds, dimensions, keep rule and selection: dialc_runtime/evaluate/quality_gold.py).
Candidate 0 is what a single label is (N = 1 uses the same seed), so both columns are measured on the
same gold prompts in one run. Prints the per-dimension table (Spearman, AUC, precision of kept vs
rejected, over every candidate) and N = 1 vs best of N: kept labels, their accuracy (correct share),
mean correctness and hallucination rate, with paired bootstrap intervals of the change.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Bar:
    """Progress on stderr, one line per tenth."""

    def __init__(self, total: int, what: str) -> None:
        self.total, self.what, self.done, self.t0, self.shown = total, what, 0, time.perf_counter(), -1

    def advance(self, n: int = 1) -> None:
        self.done += n
        tenth = 10 * self.done // max(1, self.total)
        if tenth != self.shown:
            self.shown = tenth
            print(f"  {self.what}: {self.done}/{self.total} ({time.perf_counter() - self.t0:.0f} s)",
                  file=sys.stderr, flush=True)


@contextmanager
def progress(total: int, what: str) -> Any:
    yield Bar(total, what)


def check_params(spec: Path, limit: int, candidates: int, tasks: str | None, extra: list[str] | None = None) -> Any:
    """The spec's calibrate step params for its first test set, with the experiment's settings."""
    from dialc.cli.common import load_plan
    from dialc.frontend import run_frontend

    front = run_frontend(spec, extra or [])
    assert front.ir is not None, "the spec does not validate"
    testsets = front.ir.of_kind("testset")
    if not testsets:
        raise SystemExit(f"{spec} declares no testset")
    sets = [f"quality.calibrate=gold({testsets[0].name})", f"quality.calibrate_limit={limit}",
            f"label.candidates={candidates}", *(extra or [])]
    if tasks:
        sets.append(f"testset.{testsets[0].name}.tasks=[{tasks}]")
    plan = load_plan(spec, sets)
    step = next(s for s in plan.steps if s.kind == "calibrate")
    from dialc.plan import resolve_paths

    return resolve_paths(step.params, plan.spec_dir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=Path("specs/realestate.dial"))
    parser.add_argument("--limit", type=int, default=40, help="gold dialogues (seeded sample; 0 = all)")
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--tasks", default=None, help="comma-separated task names (default: the test set's)")
    parser.add_argument("--json", type=Path, default=None, help="write every candidate and figure here")
    parser.add_argument("--reuse", type=Path, default=None, help="analyse the candidates a --json file of an "
                        "earlier run holds (same spec) instead of labelling again")
    args = parser.parse_args()

    from dialc_runtime.engine.context import BackendPool
    from dialc_runtime.evaluate.quality_gold import (
        QualityCheck,
        best_of_figures,
        dimension_figures,
        format_best_of,
        run_check,
    )
    from dialc_runtime.quality.predictive import CORRECT_TEXT, format_table

    params = check_params(args.spec, args.limit, args.candidates, args.tasks)
    print(f"labeller {params.model.path} (temperature {params.model.temperature}), {args.candidates} candidates, "
          f"test set '{params.gold.name}', {args.limit or 'all'} dialogues, tasks "
          f"{', '.join(t.id for t in params.gold.tasks)}", flush=True)
    started = time.perf_counter()
    if args.reuse:
        saved = json.loads(args.reuse.read_text(encoding="utf-8"))
        rows, names = saved["records"], [d.name for d in params.dimensions]
        check = QualityCheck(rows, dimension_figures(rows, names, params.seed),
                             best_of_figures(rows, params.seed) if args.candidates > 1 else {})
        seconds = float(saved["seconds"])
        print(f"(figures recomputed from {args.reuse}; the labelling took the time below)")
    else:
        check = run_check(params, BackendPool().get, progress)
        seconds = time.perf_counter() - started
    items = len({r["item"] for r in check.records})
    print(f"\n{len(check.records)} labels of {items} gold items in {seconds:.0f} s; correct = {CORRECT_TEXT}\n")
    print("Does quality predict correctness? (every candidate, each judged alone)")
    print(format_table(check.dimensions))
    print()
    print(format_best_of(check.best_of))
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "dimensions": [d.to_dict() for d in check.dimensions],
                                         "best_of": check.best_of, "records": check.records}, indent=1,
                                        ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()

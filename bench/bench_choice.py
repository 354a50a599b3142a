"""Embedded model → items/s of multiple-choice scoring: one (context, option) pass per option vs shared prefix.

    python bench/bench_choice.py [--items 316] [--cmmlu ../shared/data/cmmlu/test --cmmlu-items 100]

"before": every option is its own sequence (context + option), 8 per forward pass, the context tokenised
once per option (HFModel.loglikelihood, the path evaluation used until now). "after": each context is
tokenised once and run once, its options scored from its key/value cache, contexts batched by a token
budget (HFModel.choice_loglikelihoods). Both on the same items in the same run; the script also checks
that both give the same acc and acc_norm. It prints wall and CPU seconds: on a shared, loaded CPU the
wall time is noise, the CPU time is not (idle wall time on 2 cores ≈ CPU time / 2 … / 1.5).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_backend.py

from dialc_runtime.evaluate.scoring import HFModel, SuiteResult, evaluate_choice
from dialc_runtime.evaluate.suites.readers import ChoiceItem, read_suite


class PairwiseOnly:
    """The model without its shared-prefix scorer: evaluate_choice falls back to one request per option."""

    def __init__(self, lm: HFModel) -> None:
        self.lm = lm

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        return self.lm.loglikelihood(requests)

    def generate(self, *args: Any, **kw: Any) -> list[str]:
        raise NotImplementedError


def timed(lm: Any, items: list[ChoiceItem]) -> tuple[SuiteResult, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = evaluate_choice(lm, items, "bench")
    return result, time.perf_counter() - wall, time.process_time() - cpu


def compare(name: str, lm: HFModel, items: list[ChoiceItem]) -> None:
    print(f"{name}: {len(items)} items, {sum(len(i.options) for i in items)} options")
    before, b_wall, b_cpu = timed(PairwiseOnly(lm), items)
    after, a_wall, a_cpu = timed(lm, items)
    for label, result, wall, cpu in (("before", before, b_wall, b_cpu), ("after", after, a_wall, a_cpu)):
        print(
            f"  {label:<6} wall {wall:7.1f} s  cpu {cpu:7.1f} s  {len(items) / wall:6.2f} items/s wall  "
            f"{len(items) / cpu:6.2f} items/cpu-s  acc {100 * result.metrics['acc']:.1f}  "
            f"acc_norm {100 * result.metrics['acc_norm']:.1f}"
        )
    print(
        f"  speed-up: {b_cpu / a_cpu:.2f}x CPU time, {b_wall / a_wall:.2f}x wall; idle 2-core estimate for "
        f"{len(items)} items: {a_cpu / 2:.0f}-{a_cpu / 1.5:.0f} s (was {b_cpu / 2:.0f}-{b_cpu / 1.5:.0f} s)"
    )
    same = [b["pred"] == a["pred"] for b, a in zip(before.details, after.details, strict=True)]
    gap = max(
        abs(x - y)
        for b, a in zip(before.details, after.details, strict=True)
        for x, y in zip(b["loglik"], a["loglik"], strict=True)
    )
    print(f"  same prediction on {sum(same)}/{len(same)} items; largest log-likelihood gap {gap:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--items", type=int, default=316, help="built-in probe items (316 = all)")
    parser.add_argument("--cmmlu", type=Path, help="a CMMLU folder or csv (e.g. ../shared/data/cmmlu/test)")
    parser.add_argument("--cmmlu-items", type=int, default=100)
    args = parser.parse_args()
    import torch

    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    lm = HFModel.load(args.model)
    compare("general probe", lm, read_suite("builtin:general-probe", limit=args.items).items)
    if args.cmmlu:
        compare("CMMLU", lm, read_suite(str(args.cmmlu), limit=args.cmmlu_items).items)


if __name__ == "__main__":
    main()

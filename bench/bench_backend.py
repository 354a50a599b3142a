"""Embedded model → tokens/s of constrained vs plain decoding, and of batched vs one-by-one.

    python bench/bench_backend.py [--quick] [--model builtin:smollm2-135m-instruct] [--device cpu]

(a) constrained JSON generation (llguidance masks, our decoding loop) vs unconstrained HF
    `generate` on the same prompts, one request at a time: target ≥ 0.9×.
(b) 8 constrained requests decoded as one batch vs one request at a time: target ≥ 2×.
--quick: 2 prompts in (a), one timing of each mode in (b) instead of the best of two.
All numbers come from the same run; on a shared CPU they are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout
# Before torch loads OpenMP: spinning worker threads collapse throughput 5-10x on a shared,
# oversubscribed CPU (measured here); passive waiting costs little on an idle one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dialc_runtime.models.base import Constraint, GenRequest
from dialc_runtime.models.transformers_backend import TransformersBackend

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "city": {"type": "string", "maxLength": 30},
        "bedrooms": {"type": "integer", "minimum": 0, "maximum": 10},
        "budget": {"type": "integer", "minimum": 0, "maximum": 100000},
    },
    "required": ["name", "city", "bedrooms", "budget"],
    "additionalProperties": False,
}
PEOPLE = [
    ("Alice", "Paris", 2, 1800),
    ("Bob", "Berlin", 3, 2500),
    ("Chen Wei", "Shanghai", 1, 6000),
    ("Dana", "Madrid", 4, 3200),
    ("Emeka", "Lagos", 2, 900),
    ("Fatima", "Casablanca", 3, 1500),
    ("Goran", "Zagreb", 1, 700),
    ("Hana", "Kyoto", 2, 2100),
]
MAX_TOKENS = 64  # new tokens per request at most


def request(i: int, constrained: bool = True) -> GenRequest:
    name, city, rooms, budget = PEOPLE[i % len(PEOPLE)]
    text = (
        f"Customer: Hi, I'm {name}. I'm looking for a flat with {rooms} bedrooms in {city}, "
        f"and I can pay at most {budget} a month.\n"
        "Extract name, city, bedrooms and budget as JSON."
    )
    constraint = Constraint("json", SCHEMA) if constrained else Constraint()
    return GenRequest(({"role": "user", "content": text},), constraint, max_tokens=MAX_TOKENS)


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def hf_generate(backend: TransformersBackend, req: GenRequest) -> int:
    """Plain greedy HF `generate` for one request; the number of new tokens."""
    import torch

    ids = torch.tensor([backend.prompt_ids(req.messages)], device=backend.loaded.device)
    with torch.inference_mode():
        out = backend.loaded.model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_TOKENS, do_sample=False
        )
    return int(out.shape[1] - ids.shape[1])


def bench_constrained_vs_plain(backends: dict[str, TransformersBackend], n: int) -> float:
    """(a): tokens/s of each mode on the same n prompts, one at a time; returns the ratio.

    The modes are interleaved prompt by prompt so that load from other processes spreads evenly.
    """
    plain = next(iter(backends.values()))
    modes: dict[str, Any] = {
        "constrained JSON (ours)": lambda i: backends["ff"].generate([request(i)])[0],
        "constrained, no fast-fwd": lambda i: backends["no_ff"].generate([request(i)])[0],
        "unconstrained (ours)": lambda i: plain.generate([request(i, False)])[0],
        "unconstrained HF generate": lambda i: hf_generate(plain, request(i)),
    }
    tokens = dict.fromkeys(modes, 0)
    seconds = dict.fromkeys(modes, 0.0)
    valid = 0
    for i in range(n):
        for label, run in modes.items():
            out, elapsed = timed(run, i)
            tokens[label] += out if isinstance(out, int) else out.completion_tokens
            seconds[label] += elapsed
            valid += int(label.startswith("constrained") and out.ok)
    print(f"(a) {n} prompts, one at a time, greedy, max {MAX_TOKENS} new tokens")
    rate = {label: tokens[label] / seconds[label] for label in modes}
    for label in modes:
        line = f"{tokens[label]:4d} tokens {seconds[label]:6.1f} s {rate[label]:6.2f} tok/s"
        print(f"    {label:26s} {line}")
    print(f"    valid JSON: {valid}/{2 * n}   e.g. {backends['ff'].generate([request(0)])[0].text}")
    ratio = rate["constrained JSON (ours)"] / rate["unconstrained HF generate"]
    masked = rate["constrained, no fast-fwd"] / rate["unconstrained HF generate"]
    print(f"    ratio constrained / HF generate = {ratio:.2f}x  (target >= 0.9x)")
    print(f"    ratio without fast-forward     = {masked:.2f}x  (masking cost alone)")
    return ratio


def bench_batched_vs_single(path: str, device: str | None, n: int, repeats: int) -> float:
    """(b): wall time of n constrained requests as one batch vs one by one; returns the speed-up.

    Each mode runs `repeats` times, alternating; the best time of each counts.
    """
    batched = TransformersBackend({"path": path, "device": device, "batch_size": n})
    single = TransformersBackend({"path": path, "device": device, "batch_size": 1})
    requests = [request(i) for i in range(n)]
    t_b, t_s = float("inf"), float("inf")
    for _ in range(repeats):
        out_b, elapsed = timed(lambda: batched.generate(requests))
        t_b = min(t_b, elapsed)
        out_s, elapsed = timed(lambda: single.generate(requests))
        t_s = min(t_s, elapsed)
    tokens = sum(r.completion_tokens for r in out_b)
    same = [r.text for r in out_b] == [r.text for r in out_s]
    print(f"(b) {n} constrained JSON requests, {tokens} tokens, best of {repeats}")
    print(f"    one batch of {n}   {t_b:6.1f} s {tokens / t_b:6.2f} tok/s")
    print(f"    one at a time    {t_s:6.1f} s {tokens / t_s:6.2f} tok/s")
    print(f"    same texts: {same}   valid: {sum(r.ok for r in out_b)}/{n}")
    print(f"    speed-up batched / one at a time = {t_s / t_b:.2f}x  (target >= 2x)")
    return t_s / t_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer prompts (about a minute)")
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct")
    parser.add_argument("--device", default=None, help="cpu / cuda (default: cuda if available)")
    args = parser.parse_args()
    start = time.perf_counter()
    cfg = {"path": args.model, "device": args.device}
    backend, t_load = timed(TransformersBackend, cfg)
    import torch

    print(
        f"model {args.model} on {backend.loaded.device} ({backend.loaded.dtype}), "
        f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
        f"loaded in {t_load:.1f} s"
    )
    backend.generate([request(0)])  # warm-up: first forward passes allocate and tune
    no_ff = TransformersBackend({**cfg, "fast_forward": False})
    bench_constrained_vs_plain({"ff": backend, "no_ff": no_ff}, 2 if args.quick else 4)
    bench_batched_vs_single(args.model, args.device, 8, 1 if args.quick else 2)
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

"""Labelling throughput vs `concurrency` against an OpenAI-compatible server with a fixed latency per request.

Starts tests/openai_server.py (localhost, `--latency`), then runs the label step (its real module, through
the openai backend's sliding window) over N prompts for each concurrency, and prints records/s and the
speedup over concurrency 1 measured in the same run. The ideal is `concurrency` × (1 / latency) records/s.

    .venv/bin/python bench/bench_concurrency.py [--latency 0.2] [--levels 1,2,4,8,16,32,64] [--windows 10]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from runtime_fakes import MemoryContext  # noqa: E402
from servers import TEST_SERVER, start_server  # noqa: E402

from dialc.plan import ModelSpec  # noqa: E402
from dialc_runtime.models.openai_backend import OpenAIBackend  # noqa: E402
from dialc_runtime.steps import label  # noqa: E402


def served(latency: float, jitter: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    """The tests' server answering after `latency` seconds (± `jitter` of it), echoing the prompt."""
    proc, port = start_server(TEST_SERVER, "--latency", str(latency), "--jitter", str(jitter), "--echo-prompt")
    return proc, f"http://127.0.0.1:{port}/v1"


def prompts(n: int) -> list[dict[str, Any]]:
    return [{"id": f"p{i:06d}", "messages": [{"role": "user", "content": f"Summarise dialogue {i} in one line."}],
             "output": {"kind": "text", "max_chars": 400}} for i in range(n)]


class BatchesOnly:
    """The backend without its stream: generate_each then sends batch_size requests at a time, each batch
    waiting for its slowest request (how dialc worked before the sliding window)."""

    def __init__(self, inner: OpenAIBackend) -> None:
        self._backend = inner

    def generate(self, requests: list[Any]) -> list[Any]:
        return self._backend.generate(requests)


def label_rate(url: str, concurrency: int, n: int, batches: bool = False) -> tuple[float, float, int]:
    """(records/s, seconds, records) of the label step over n prompts at this concurrency."""
    model = ModelSpec(name="served", backend="openai", path="test-model", base_url=url, max_tokens=64, timeout=60,
                      concurrency=concurrency, batch_size=concurrency if batches else 8)
    backend = OpenAIBackend(model.config())
    ctx = MemoryContext("label.labels", {"model": model, "seed": 1}, {"sample.prompts": prompts(n)},
                        backend=BatchesOnly(backend) if batches else backend)
    try:
        t0 = time.perf_counter()
        label.run(ctx)  # type: ignore[arg-type]
        seconds = time.perf_counter() - t0
    finally:
        backend.close()
    assert len(ctx.emitted) == n and all("seed=" in r["answer"] for r in ctx.emitted.values())
    return n / seconds, seconds, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per request")
    parser.add_argument("--levels", default="1,2,4,8,16,32,64", help="concurrency values, comma-separated")
    parser.add_argument("--windows", type=int, default=10, help="prompts per level: this many × concurrency "
                        "(at least 20)")
    parser.add_argument("--jitter", type=float, default=0.75, help="the window-vs-batches comparison: latency "
                        "varies by this share")
    parser.add_argument("--compare-at", type=int, default=16, help="the window-vs-batches comparison's concurrency")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    proc, url = served(args.latency)
    try:
        label_rate(url, 4, 8)  # warm-up: imports, connections
        rows = [(c, *label_rate(url, c, max(20, args.windows * c))) for c in levels]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    at, total = args.compare_at, max(20, args.windows * args.compare_at)
    proc, url = served(args.latency, args.jitter)
    try:
        window = label_rate(url, at, total)[0]
        batched = label_rate(url, at, total, batches=True)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    base = rows[0][1]
    print(f"server latency {args.latency * 1000:.0f} ms per request; label step, openai backend, sliding window")
    print("| concurrency | prompts | seconds | records/s | speedup vs 1 | ideal |")
    print("|---|---|---|---|---|---|")
    for c, rate, seconds, n in rows:
        print(f"| {c} | {n} | {seconds:.2f} | {rate:.1f} | {rate / base:.1f}x | {c}x |")
    low, high = args.latency * (1 - args.jitter) * 1000, args.latency * (1 + args.jitter) * 1000
    print(f"\nlatency {low:.0f}–{high:.0f} ms (evenly spread), concurrency {at}, {total} prompts:")
    print("| requests in flight | records/s |")
    print("|---|---|")
    print(f"| batches of {at}, each waiting for its slowest | {batched:.1f} |")
    print(f"| sliding window of {at} | {window:.1f} ({window / batched:.2f}x) |")


if __name__ == "__main__":
    main()

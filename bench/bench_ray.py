"""`--engine ray` scaling: labelling records/s with 1 → 4 local Ray workers, each against its own server process.

    python bench/bench_ray.py [--prompts 480] [--latency 0.2] [--workers 1 2 4]

Each server is bench/scale_server.py with a fixed latency per request (a stand-in for a model server on
its own machine); worker i of the label model's actor pool sends its requests to server i. The pipeline is
ingest → sample → label (openai backend, `batch_size` requests in flight per worker). Every run is fresh
(its own run directory); the actors are started before the clock starts (their start-up is printed apart).
Printed per worker count: the label step's wall time, records/s, and the speedup over 1 worker measured in
the same run; the local engine against one server is the first row, for reference. Records are checked to be
identical (output digest) across every run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from servers import SCALE_SERVER, start_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT / "data" / "realestate" / "dialogues.jsonl"

SPEC = """\
pipeline rayscale {{ seed = 7 }}
model served {{
  backend = openai  path = "bench"  base_url = "http://127.0.0.1:{port}/v1"
  temperature = 0.0  max_tokens = 64  retries = 1  batch_size = {batch}  timeout = 120
}}
source dialogues {{ path = "dialogues.jsonl"  roles = [agent, customer]  scenario = field("scenario") }}
task extract {{
  category = information_extraction
  instruction = "Extract the customer's housing requirements from the dialogue."
  output {{ budget_max: int? [0..100_000_000]  district: str? (max 40) }}
}}
task summary {{ category = summarization  instruction = "Summarise the conversation."  output = text(max = 300) }}
expressions style {{ tone = {{formal: 2, friendly: 2, terse: 1}}  detail = {{brief: 1, thorough: 1}} }}
sample prompts {{ from = dialogues * tasks * style  count = {count} }}
label labels {{ from = prompts  model = served }}
"""


def project(work: Path, port: int, count: int, batch: int) -> Path:
    dialogues = [json.loads(line) for line in CORPUS.read_text("utf-8").splitlines() if line.strip()]
    (work / "dialogues.jsonl").write_text("\n".join(json.dumps(d) for d in dialogues) + "\n", encoding="utf-8")
    spec = work / "rayscale.dial"
    spec.write_text(SPEC.format(port=port, count=count, batch=batch), encoding="utf-8")
    return spec


def label_run(plan: Any, run_dir: Path, engine: Any) -> tuple[float, int, str]:
    """(seconds, records, output digest) of the label step in a fresh run."""
    from dialc_runtime.engine.executor import execute
    from dialc_runtime.engine.store import Store

    res = execute(plan, run_dir, quiet=True, engine=engine)
    step = res.step("label.labels")
    if step.status != "ok":
        raise SystemExit(f"label failed: {step.message}")
    with Store(run_dir) as store:
        done = store.completed(step.key or "")
    assert done is not None
    return step.seconds, step.records, done.digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=480)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=8, help="the model's batch_size: requests in flight per worker")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    os.environ["RAY_DISABLE_USAGE_STATS"] = "1"
    import ray

    from dialc.plan import LabelParams
    from dialc_runtime.engine.engines import LocalEngine
    from dialc_runtime.engine.ray_engine import RayEngine
    from tests.pipeline_kit import compile_spec

    servers = [start_server(SCALE_SERVER, "--latency", str(args.latency)) for _ in range(max(args.workers))]
    urls = [f"http://127.0.0.1:{port}/v1" for _, port in servers]
    ray.init(num_cpus=max(args.workers), object_store_memory=80 * 1024**2, include_dashboard=False,
             log_to_driver=False, configure_logging=False, logging_level="warning")
    rows: list[tuple[str, float, int, float]] = []
    digests: set[str] = set()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            plan = compile_spec(project(work, servers[0][1], args.prompts, args.batch))
            model = next(s.params.model for s in plan.steps if isinstance(s.params, LabelParams))
            seconds, n, digest = label_run(plan, work / "local", LocalEngine())
            rows.append(("local engine, 1 server", seconds, n, 0.0))
            digests.add(digest)
            for w in args.workers:
                engine = RayEngine(workers=w, endpoints={model.name: urls[:w]})
                t0 = time.perf_counter()
                pool = engine.pool(model)
                while pool.starting:
                    pool.poll(timeout=1.0)
                startup = time.perf_counter() - t0
                seconds, n, digest = label_run(plan, work / f"ray{w}", engine)
                engine.close()
                rows.append((f"ray, {w} worker(s), {w} server(s)", seconds, n, startup))
                digests.add(digest)
    finally:
        ray.shutdown()
        for proc, _ in servers:
            proc.kill()
    print(f"{args.prompts} prompts, {args.latency * 1000:.0f} ms per request, batch_size {args.batch} per worker")
    print("| engine | label wall | records/s | speedup vs 1 Ray worker | actor start-up |")
    print("|---|---|---|---|---|")
    base = next((n / s for name, s, n, _ in rows if name.startswith("ray, 1 ")), None)
    for name, s, n, startup in rows:
        speed = n / s
        ratio = f"{speed / base:.2f}x" if base and name.startswith("ray") else "–"
        up = f"{startup:.1f} s" if name.startswith("ray") else "–"
        print(f"| {name} | {s:.1f} s | {speed:.0f} | {ratio} | {up} |")
    print("records identical across runs:", "yes" if len(digests) == 1 else f"NO ({len(digests)} digests)")


if __name__ == "__main__":
    main()

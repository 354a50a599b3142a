"""`--engine ray` with a model served through ray.data.llm: label + a choice judge, records/s, tokens/s, valid share.

    python bench/vllm_ray_check.py --model HF_DIR [--prompts 256]       # backend = vllm: vLLM engines (GPU)
    python bench/vllm_ray_check.py --http BASE_URL [--prompts 48]       # the HTTP route (any OpenAI server)

The vLLM form is what bench/gpu_check.sh runs on a GPU machine where vLLM installs (`--workers` engines,
default one per GPU); the HTTP form runs anywhere (e.g. against bench/scale_server.py) and checks the script and
the shared path. Prints one JSON row; `--json FILE` writes it too.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SPEC = """
pipeline vllmcheck {{ seed = 3 }}
model served {{ {model} max_tokens = 96  batch_size = {batch}  temperature = 0.0 }}
source dialogues {{ path = "dialogues.jsonl"  roles = [agent, customer] }}
scenarios {{ rental "Renting" weight 1 }}
task extract {{
  category = extraction
  instruction = "Extract the customer's budget and district."
  output {{ budget: int? [0..100000000]  district: str? (max 40) }}
}}
task intent {{ category = intent  instruction = "Is the customer ready to view?"  output = choice([yes, no]) }}
sample prompts {{ from = dialogues * tasks  count = {count} }}
label labels {{ from = prompts  model = served }}
quality {{
  dimension valid rule {{ check = schema  gate = true }}
  dimension helpful judge {{ model = served  rubric = "Is the answer helpful?"  method = choice }}
  keep when score >= 0
}}
"""
DISTRICTS = ("Riverside", "Old Town", "Harbour", "Hillcrest", "Northgate", "Parkview")


def dialogue(i: int) -> dict[str, Any]:
    district, budget = DISTRICTS[i % len(DISTRICTS)], 300_000 + 25_000 * (i % 17)
    return {"id": f"d{i:04d}", "scenario": "rental", "turns": [
        {"role": "customer", "text": f"Hello, I am looking for a flat in {district}, at most {budget} euros."},
        {"role": "agent", "text": "Certainly. Would you like to view one on Saturday?"}]}


def write_project(root: Path, model_fields: str, prompts: int, batch: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dialogue(i)) for i in range(max(1, prompts // 2))]
    (root / "dialogues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = root / "check.dial"
    spec.write_text(SPEC.format(model=model_fields, batch=batch, count=prompts), encoding="utf-8")
    return spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--model", help="backend = vllm: a local HF model directory")
    where.add_argument("--http", help="the HTTP route: an OpenAI-compatible server's base URL (…/v1)")
    parser.add_argument("--served", default="bench", help="--http: the served model name")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32, help="rows per batch sent to an engine / request actor")
    parser.add_argument("--workers", type=int, help="engines (default: one per GPU) or request actors (1)")
    parser.add_argument("--json", help="also write the row to this file")
    args = parser.parse_args()
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

    from dialc.compiler import compile_plan
    from dialc.frontend import run_frontend
    from dialc_runtime.engine.engines import engine_problems
    from dialc_runtime.engine.executor import execute
    from dialc_runtime.engine.ray_engine import RayEngine

    if args.model:
        fields, http = f'backend = vllm  path = "{Path(args.model).resolve()}"', set()
    else:
        fields, http = f'backend = openai  path = "{args.served}"  base_url = "{args.http}"', {"served"}
    work = Path(tempfile.mkdtemp(prefix="dialc-vllm-ray-"))
    spec = write_project(work, fields, args.prompts, args.batch)
    front = run_frontend(spec, None)
    errors = [d for d in front.diags.items if d.severity == "error"]
    if errors or front.ir is None:
        sys.exit(f"vllm_ray_check: the spec does not compile: {errors}")
    plan = compile_plan(front.ir, str(spec))
    problems = list(engine_problems(plan, "ray"))
    if problems:
        sys.exit(f"vllm_ray_check: {problems[0]}")
    engine = RayEngine(workers=args.workers, http_data=http)
    start = time.perf_counter()
    try:
        results = execute(plan, work / "run", quiet=True, engine=engine)
        jobs = sum(b.jobs for b in engine.data_backends.values())
    finally:
        engine.close()
    wall = time.perf_counter() - start
    label, judge = results.step("label.labels"), results.step("score.helpful")
    if not results.ok:
        sys.exit(f"vllm_ray_check: the run failed: {[(s.id, s.message) for s in results.steps if s.message]}")
    valid = results.step("score.valid").metrics
    row = {
        "route": "vllm" if args.model else "http", "prompts": args.prompts, "ray_data_jobs": jobs,
        "label_s": round(label.seconds, 2), "label_records_per_s": round(label.records / max(label.seconds, 1e-9), 1),
        "label_completion_tokens_per_s": round(label.completion_tokens / max(label.seconds, 1e-9), 1),
        "label_model_calls": label.model_calls, "judge_s": round(judge.seconds, 2),
        "valid_share": valid.get("pass_rate"), "wall_s": round(wall, 2),
    }
    print(json.dumps(row))
    if args.json:
        Path(args.json).write_text(json.dumps(row, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

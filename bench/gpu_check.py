"""GPU path check: LoRA fine-tuning (bf16 on CUDA), the transformers backend's constrained batched generation,
and optionally the openai backend against a served model (vLLM): tokens/s and the share of valid JSON.

    .venv/bin/python bench/gpu_check.py --device cuda --compare-cpu          # on a GPU machine
    .venv/bin/python bench/gpu_check.py --device cpu --tiny                   # smoke test, anywhere
    .venv/bin/python bench/gpu_check.py --only openai --base-url URL --served NAME

`--compare-cpu` measures the CPU path in a subprocess that cannot see the GPU (CUDA_VISIBLE_DEVICES=""), in the
same run, and prints the GPU / CPU ratio. `--tiny` uses a tiny random model (tests/tiny_model.py) instead of
the embedded SmolLM2-135M: the numbers then only show that every path runs. `--json FILE` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
EMBEDDED = "builtin:smollm2-135m-instruct"
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["district", "budget_max", "bedrooms"],
          "properties": {"district": {"type": "string", "maxLength": 40},
                         "budget_max": {"type": "integer", "minimum": 0, "maximum": 100_000_000},
                         "bedrooms": {"type": "integer", "minimum": 0, "maximum": 10}}}
DISTRICTS = ("Riverside", "Old Town", "Harbour", "Hillcrest", "Northgate", "Parkview")


def model_path(tiny: bool) -> str:
    if not tiny:
        return EMBEDDED
    from tiny_model import build_tiny_model

    return str(build_tiny_model(Path(tempfile.gettempdir()) / "dialc-gpu-check-tiny"))


def dialogue(i: int) -> str:
    district, budget, rooms = DISTRICTS[i % len(DISTRICTS)], 300_000 + 25_000 * (i % 17), 1 + i % 4
    return (f"customer: Hello, I am looking for a {rooms}-bedroom flat in {district}.\n"
            f"agent: Certainly. What is your budget?\ncustomer: At most {budget} euros, and I need parking.")


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "Extract the customer's housing requirements as JSON.\n\n" + dialogue(i)}]


def train_records(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        answer = {"district": DISTRICTS[i % len(DISTRICTS)], "budget_max": 300_000 + 25_000 * (i % 17),
                  "bedrooms": 1 + i % 4}
        out.append({"messages": [*messages(i), {"role": "assistant", "content": json.dumps(answer)}]})
    return out


def check_train(path: str, steps: int) -> dict[str, Any]:
    """LoRA fine-tuning for `steps` optimizer steps: tokens/s (bf16 on CUDA, chosen by the trainer itself)."""
    import torch

    from dialc_runtime.train.trainer import TrainConfig, train

    cfg = TrainConfig(method="lora", max_steps=steps, batch_size=8, max_len=256, save_steps=10_000, warmup=0,
                      seed=1)
    with tempfile.TemporaryDirectory() as out:
        result = train(path, train_records(64), Path(out), cfg)
    dtype = "bf16" if torch.cuda.is_available() else "fp32"
    return {"check": f"LoRA fine-tuning ({dtype})", "tokens": result.tokens, "seconds": round(result.seconds, 2),
            "tokens_per_s": round(result.tokens_per_s, 1), "valid_json": None,
            "note": f"{result.steps} steps, final loss {result.final_loss}"}


def json_requests(n: int, max_tokens: int) -> list[Any]:
    from dialc_runtime.models.base import Constraint, GenRequest

    return [GenRequest(messages=tuple(messages(i)), constraint=Constraint(kind="json", schema=SCHEMA),
                       max_tokens=max_tokens, temperature=0.0, seed=i) for i in range(n)]


def measure(name: str, backend: Any, n: int, max_tokens: int) -> dict[str, Any]:
    requests = json_requests(n, max_tokens)
    backend.generate(requests[:2])  # warm-up: weights on the device, kernels, connections
    t0 = time.perf_counter()
    results = backend.generate(requests)
    seconds = time.perf_counter() - t0
    tokens = sum(r.completion_tokens for r in results)
    valid = sum(1 for r in results if r.ok) / len(results)
    return {"check": name, "tokens": tokens, "seconds": round(seconds, 2),
            "tokens_per_s": round(tokens / seconds, 1), "valid_json": round(valid, 3),
            "note": f"{n} requests, max_tokens {max_tokens}"}


def check_generate(path: str, device: str, n: int) -> dict[str, Any]:
    """The transformers backend: JSON-constrained batched generation on `device`."""
    from dialc_runtime.models.transformers_backend import TransformersBackend

    backend = TransformersBackend({"path": path, "device": device, "batch_size": 16, "retries": 0})
    return measure(f"transformers constrained generation ({device})", backend, n, 64)


def check_openai(base_url: str, served: str, n: int) -> dict[str, Any]:
    """The openai backend against a served model (response_format json_schema), a window of 32 requests."""
    from dialc_runtime.models.openai_backend import OpenAIBackend

    backend = OpenAIBackend({"base_url": base_url, "path": served, "concurrency": 32, "retries": 0,
                             "timeout": 300})
    try:
        return measure("openai backend (served)", backend, n, 64)
    finally:
        backend.close()


def cpu_rows(args: argparse.Namespace, only: set[str]) -> list[dict[str, Any]]:
    """The same checks on the CPU path, in a process that cannot see the GPU."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [sys.executable, __file__, "--device", "cpu", "--only", ",".join(only & {"train", "generate"}),
                   "--steps", str(args.cpu_steps), "--n", str(args.cpu_n), "--json", out.name]
        if args.tiny:
            command.append("--tiny")
        subprocess.run(command, check=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
        return list(json.loads(Path(out.name).read_text()))


def print_table(rows: list[dict[str, Any]]) -> None:
    print("| check | tokens | seconds | tokens/s | valid JSON | note |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        valid = "–" if r["valid_json"] is None else f"{r['valid_json']:.0%}"
        print(f"| {r['check']} | {r['tokens']} | {r['seconds']} | {r['tokens_per_s']} | {valid} | {r['note']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda or cpu")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model: a smoke test of every path")
    parser.add_argument("--only", default="train,generate", help="checks: train, generate, openai")
    parser.add_argument("--steps", type=int, default=30, help="LoRA optimizer steps")
    parser.add_argument("--n", type=int, default=64, help="generation requests")
    parser.add_argument("--compare-cpu", action="store_true", help="also measure the CPU path, in a subprocess")
    parser.add_argument("--cpu-steps", type=int, default=5, help="LoRA steps of the CPU comparison")
    parser.add_argument("--cpu-n", type=int, default=16, help="generation requests of the CPU comparison")
    parser.add_argument("--base-url", help="openai check: the server (e.g. http://127.0.0.1:8000/v1)")
    parser.add_argument("--served", default="", help="openai check: the served model name")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("gpu_check: --device cuda, but torch sees no CUDA device (torch "
                             f"{torch.__version__}, CUDA build: {torch.version.cuda}); use --device cpu")
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"bf16 supported: {torch.cuda.is_bf16_supported()}", flush=True)
    path = model_path(args.tiny)
    rows: list[dict[str, Any]] = []
    if "train" in only:
        rows.append(check_train(path, args.steps))
    if "generate" in only:
        rows.append(check_generate(path, args.device, args.n))
    if "openai" in only:
        if not args.base_url:
            raise SystemExit("gpu_check: --only openai needs --base-url")
        rows.append(check_openai(args.base_url, args.served, args.n))
    if args.compare_cpu and args.device != "cpu":
        cpu = cpu_rows(args, only)
        for row in cpu:
            row["check"] += " [CPU reference]"
        speed = {r["check"].split(" (")[0]: r["tokens_per_s"] for r in cpu}
        for row in rows:
            base = speed.get(row["check"].split(" (")[0])
            if base:
                row["note"] += f"; {row['tokens_per_s'] / base:.1f}x the CPU path"
        rows += cpu
    print_table(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

"""Synthetic chat records → training tokens/s of dialc's finetune path vs a plain PEFT torch loop.

    python bench/bench_finetune.py                 # the embedded SmolLM2-135M (CPU: ~1-3 min)
    python bench/bench_finetune.py --model tiny    # the tiny random test model (seconds)

Both sides train the same LoRA (r 8, q_proj/v_proj) on the same tokenized examples, in batches
of the same size, for the same number of optimizer steps, at a constant learning rate; tokens/s
counts the non-padding tokens of the batches trained on, over the training loop's wall time
(model loading and saving excluded, reported separately as end-to-end seconds).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

DISTRICTS = ["Chaoyang", "Haidian", "Dongcheng", "Xicheng", "Fengtai"]


def synthetic_records(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Extraction-style chat samples: a short dialogue and instruction in, a JSON answer out."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        budget, district, rooms = (
            rng.randrange(2, 20) * 500,
            rng.choice(DISTRICTS),
            rng.randint(1, 4),
        )
        dialogue = (
            f"agent: Hello, how can I help you today?\ncustomer: I am looking for a "
            f"{rooms}-bedroom flat in {district}, my budget is about {budget} a month.\n"
            "agent: Any other wishes?\n"
            f"customer: Close to the subway would be nice, and I have a cat (case {i})."
        )
        answer = json.dumps({"budget_max": budget, "district": district, "bedrooms": rooms})
        out.append(
            {
                "messages": [
                    {"role": "system", "content": "You extract housing requirements as JSON."},
                    {"role": "user", "content": f"{dialogue}\n\nExtract the requirements."},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return out


def run_dialc(base: Path, records: list[dict], args: argparse.Namespace) -> dict[str, float]:
    """dialc's dialc_runtime.train.trainer.train (transformers Trainer, our masks and collator)."""
    from dialc_runtime.train.trainer import TrainConfig, train

    out = Path(tempfile.mkdtemp(prefix="bench-ft-"))
    cfg = TrainConfig(
        max_steps=args.steps,
        batch_size=args.batch_size,
        lr=1e-4,  # peak learning rate
        schedule="constant",
        warmup=0,
        max_len=args.max_len,
        save_steps=10_000,  # no checkpoint inside the measured loop
        seed=0,
    )
    start = time.perf_counter()
    result = train(base, records, out, cfg)
    total = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    return {"tokens": result.tokens, "train_s": result.seconds, "end_to_end_s": total}


def run_baseline(base: Path, records: list[dict], args: argparse.Namespace) -> dict[str, float]:
    """A plain loop: AutoModelForCausalLM + peft.get_peft_model + torch AdamW, same examples."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dialc_runtime.train.trainer import Collator, build_examples

    start = time.perf_counter()
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    base_model.config.use_cache = False
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base_model, lora).train()
    examples, _ = build_examples(tokenizer, records, args.max_len)
    random.Random(0).shuffle(examples)
    collate = Collator(tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    tokens, loop = 0, time.perf_counter()
    for step in range(args.steps):
        first = (step * args.batch_size) % len(examples)
        batch = collate(examples[first : first + args.batch_size])
        tokens += batch.pop("num_tokens")
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
    train_s = time.perf_counter() - loop
    return {
        "tokens": tokens,
        "train_s": train_s,
        "end_to_end_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m-instruct", help="or 'tiny'")
    parser.add_argument("--records", type=int, default=64)  # synthetic chat samples
    parser.add_argument("--steps", type=int, default=12)  # optimizer steps per side
    parser.add_argument("--batch-size", type=int, default=4)  # sequences per step
    parser.add_argument("--max-len", type=int, default=512)  # tokens per sequence at most
    args = parser.parse_args()

    import torch

    from dialc_runtime.models.locate import resolve_model

    if args.model == "tiny":
        from tiny_model import build_tiny_model

        base = build_tiny_model(Path(tempfile.gettempdir()) / "dialc-bench-tiny")
    else:
        base = resolve_model(args.model)
    records = synthetic_records(args.records)
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"model {args.model}  device {device}  steps {args.steps}  batch {args.batch_size}")
    results = {
        "baseline": run_baseline(base, records, args),
        "dialc": run_dialc(base, records, args),
    }
    for name, r in results.items():
        rate = r["tokens"] / r["train_s"]
        print(
            f"{name:<9} {r['tokens']:>7d} tokens  {r['train_s']:7.2f} s loop  {rate:8.1f} tokens/s"
            f"  {r['end_to_end_s']:7.2f} s end to end"
        )
    ratio = (results["dialc"]["tokens"] / results["dialc"]["train_s"]) / (
        results["baseline"]["tokens"] / results["baseline"]["train_s"]
    )
    print(f"dialc / baseline tokens/s ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()

"""Small real pipelines for step tests: write a spec and data into a temp dir, compile, execute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dialc.compiler import compile_plan
from dialc.frontend import run_frontend
from dialc.plan import Plan
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.results import RunResults
from dialc_runtime.engine.store import Store

DIALOGUES = [
    {"id": f"d{i:02d}", "scenario": "rental" if i % 3 else "purchase",
     "turns": [{"role": "customer",
                "text": f"I need a {1 + i % 3}-bedroom flat in Riverside, budget {2000 + 100 * i}."},
               {"role": "agent", "text": f"Sure. Call me on 555-01{i:02d} and we can view it on Friday."}]}
    for i in range(12)
]

SPEC = """
pipeline kit {{ seed = 7 }}
model tiny {{ path = "{model}"  max_tokens = 48  batch_size = 4  temperature = 0.7 }}
source dialogues {{ path = "dialogues.jsonl"  roles = [agent, customer]  pii_scrub = true }}
scenarios {{
  rental   "Renting"  weight 3
  purchase "Buying"   weight 1
}}
task extract {{
  category = extraction
  instruction = "Extract the customer's budget and district."
  output {{ budget: int? [0..1000000]  district: str? (max 20) }}
}}
task summary {{ category = summary  instruction = "Summarise the dialogue."  output = text(max = 80) }}
task intent {{ category = intent  instruction = "Is the customer ready?"  output = choice([yes, no]) }}
expressions style {{ tone = {{formal: 1, friendly: 3}} }}
sample prompts {{ from = dialogues * tasks * style  count = {count}  balance = [scenario, category] }}
label labels {{ from = prompts  model = tiny }}
quality {{
  dimension valid rule {{ check = schema  gate = true }}
  dimension brief rule {{ check = length  max = 200 }}
  keep when score >= 0
}}
export dataset {{ formats = [chat_jsonl, parquet, hf_dataset] }}
"""


def write_project(root: Path, model: Path | str = "builtin:smollm2-135m-instruct", count: int = 12,
                  dialogues: list[dict[str, Any]] | None = None, spec: str = SPEC) -> Path:
    """The spec file path; the dialogues file sits beside it."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(d) for d in (dialogues if dialogues is not None else DIALOGUES)]
    (root / "dialogues.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = root / "kit.dial"
    path.write_text(spec.format(model=str(model), count=count), encoding="utf-8")
    return path


def compile_spec(path: Path, overrides: list[str] | None = None) -> Plan:
    front = run_frontend(path, overrides)
    errors = [d for d in front.diags.items if d.severity == "error"]
    assert not errors, errors
    assert front.ir is not None
    return compile_plan(front.ir, str(path))


def run(path: Path, run_dir: Path, select: list[str] | None = None, **kw: Any) -> RunResults:
    return execute(compile_spec(path), run_dir, select=select, quiet=True, **kw)


def records(run_dir: Path, results: RunResults, step_id: str) -> list[Any]:
    with Store(run_dir) as store:
        return [r for _, r in store.records(results.step(step_id).key)]


# ---- a gold test set for SPEC's `intent` task ----------------------------------------------------------------

GOLD_DIALOGUES = [{"id": f"t{i}", "scenario": "purchase", "turns": [
    {"role": "customer", "text": f"Good morning, my wife and I saw house number {i} near the harbour yesterday."},
    {"role": "agent", "text": "Lovely, shall we arrange a second visit with the owners this weekend?"}]}
    for i in range(4)]
# to append to SPEC before formatting (its braces are doubled like SPEC's)
TESTSET = """
testset gold {{ path = "gold.jsonl"  references = "refs.jsonl"  like = dialogues  tasks = [intent] }}
"""


def write_gold(root: Path) -> None:
    """gold.jsonl and refs.jsonl (every reference `intent: yes`) beside a project written by write_project."""
    (root / "gold.jsonl").write_text("".join(json.dumps(d) + "\n" for d in GOLD_DIALOGUES), encoding="utf-8")
    (root / "refs.jsonl").write_text("".join(json.dumps({"id": d["id"], "answers": {"intent": "yes"}}) + "\n"
                                             for d in GOLD_DIALOGUES), encoding="utf-8")

"""A review file of four candidates (evolved tasks and a paraphrase) as the review step writes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dialc_runtime.data.review import merge_candidates

SCHEMA = {"kind": "json", "schema": {
    "type": "object", "additionalProperties": False, "required": ["budget", "district"],
    "properties": {"budget": {"type": ["integer", "null"], "minimum": 0, "maximum": 100000000},
                   "district": {"type": ["string", "null"], "maxLength": 40}}}}
TEXT = {"kind": "text", "max_chars": 300}
DIALOGUE = {"id": "d07", "scenario": "rental",
            "text": "Customer: I need a 2-bedroom flat in Riverside, budget 2700.\n"
                    "Agent: We have two near the park. Can you view them on Friday?\n"
                    "Customer: Friday works. Is parking included?\nAgent: One of them has a garage."}
TASKS: dict[str, dict[str, Any]] = {
    "extract": {"id": "extract", "category": "information_extraction", "output": SCHEMA,
                "instruction": "Extract the customer's budget and preferred district."},
    "reply": {"id": "reply", "category": "reply_generation", "output": TEXT,
              "instruction": "Write the agent's next reply."},
}


def _evolved(parent: str, operator: str, instruction: str) -> dict[str, Any]:
    task = TASKS[parent]
    return {"id": f"{parent}~{operator}1", "category": task["category"], "instruction": instruction,
            "output": task["output"], "origin": "evolved", "chain": [{"operator": operator, "parent": parent}],
            "context_dialogue": DIALOGUE}


CANDIDATES = [
    _evolved("extract", "add_constraint", "Extract the budget and district; leave a field null unless the "
             "customer states it outright."),
    _evolved("extract", "deepen", "Extract the customer's budget and district, and the reason given for each."),
    _evolved("reply", "concretize", "Write the agent's next reply, proposing two concrete viewing times."),
    {"id": "reply#p1", "kind": "paraphrase", "task_id": "reply", "category": "reply_generation",
     "instruction": "Draft what the agent should say next.", "chain": [{"operator": "paraphrase", "parent": "reply"}]},
]
IDS = sorted(c["id"] for c in CANDIDATES)  # the order of the file and of the page


def write_candidates(path: Path) -> Path:
    merge_candidates(path, CANDIDATES, TASKS)
    return path

"""Plan steps → rough model-call and token estimates for `dialc run --dry-run` (no model loaded)."""

from __future__ import annotations

from typing import Any

from dialc.plan import Plan, Step

PROMPT_TOKENS = 450  # typical production prompt: a cut transcript plus the task (SmolLM2 tokenizer)


def upstream_count(step: Step, plan: Plan) -> int:
    """How many records the nearest sample step upstream will draw."""
    seen = list(step.inputs)
    while seen:
        current = plan.step(seen.pop(0))
        if current.kind == "sample":
            return int(current.params["count"])
        seen.extend(current.inputs)
    return 0


def generation(calls: int, model: dict[str, Any], prompt_tokens: int = PROMPT_TOKENS) -> dict[str, int]:
    return {"model_calls": calls, "tokens": calls * (prompt_tokens + int(model.get("max_tokens", 256)))}

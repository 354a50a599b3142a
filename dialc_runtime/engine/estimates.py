"""Plan steps → rough model-call and token estimates for `dialc run --dry-run` (no model loaded)."""

from __future__ import annotations

from dialc.plan import ModelSpec, Plan, SampleParams, Step

PROMPT_TOKENS = 450  # typical production prompt: a cut transcript plus the task (SmolLM2 tokenizer)


def upstream_count(step: Step, plan: Plan) -> int:
    """How many records the nearest sample step upstream will draw."""
    seen = list(step.input_ids)
    while seen:
        current = plan.step(seen.pop(0))
        if isinstance(current.params, SampleParams):
            return current.params.count
        seen.extend(current.input_ids)
    return 0


def generation(calls: int, model: ModelSpec, prompt_tokens: int = PROMPT_TOKENS) -> dict[str, int]:
    return {"model_calls": calls, "tokens": calls * (prompt_tokens + model.max_tokens)}

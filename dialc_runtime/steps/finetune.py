"""finetune.<name>: kept records of filter.* minus the hold-out → a LoRA adapter in out_dir."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.data.split import is_holdout
from dialc_runtime.evaluate.suites.readers import ChoiceItem, SuiteFormatError, read_suite

VERSION = "1"


def holdout_setting(params: dict[str, Any], ctx: Any) -> tuple[float, int]:
    """(fraction, seed) of the hold-out; the seed defaults to the pipeline seed, so finetune and
    evaluate (which may have their own step seeds) split the dialogues the same way."""
    holdout = params.get("holdout") or params.get("domain") or {}
    plan = getattr(ctx, "plan", None)
    default = plan.settings.get("seed", 0) if plan is not None else ctx.seed
    return float(holdout.get("fraction", 0.0)), int(holdout.get("seed", default))


def chat_sample(record: dict[str, Any]) -> dict[str, Any]:
    """A labelled production prompt → a chat sample whose last turn is the label."""
    messages = list(record["messages"])
    if messages and messages[-1]["role"] == "assistant":
        return {"messages": messages}
    return {"messages": [*messages, {"role": "assistant", "content": record["answer"]}]}


def training_records(ctx: Any) -> tuple[list[dict[str, Any]], int]:
    """Chat samples of the kept records of every filter.* input, minus the hold-out dialogues."""
    fraction, seed = holdout_setting(ctx.params, ctx)
    samples, held_out = [], 0
    for step_id in ctx.step.inputs:
        if not step_id.startswith("filter."):
            continue
        for record in ctx.records(step_id):
            if not record.get("kept") or not record.get("answer"):
                continue
            if fraction > 0 and is_holdout(str(record["dialogue_id"]), fraction, seed):
                held_out += 1
                continue
            samples.append(chat_sample(record))
    return samples, held_out


def suite_samples(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """A general suite as chat samples (question → right option, or → worked solution)."""
    name = spec.get("path") or spec.get("suite")
    limit = spec.get("limit") or None
    suite = read_suite(str(name), spec.get("kind"), limit, spec.get("subjects"))
    samples = []
    for item in suite.items:
        if isinstance(item, ChoiceItem):
            answer = item.choices[item.answer]
        else:
            answer = item.solution or item.answer
        samples.append(
            {
                "messages": [
                    {"role": "user", "content": item.question},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return samples


def replay_samples(specs: list[dict[str, Any]], count: int, seed: int) -> list[dict[str, Any]]:
    """Replay draws from every `replay` suite, each at its own ratio of the domain records."""
    from dialc_runtime.train.trainer import draw_replay

    drawn: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        try:
            pool = suite_samples(spec)
        except SuiteFormatError as exc:
            raise StepFailed(f"replay suite: {exc}") from None
        drawn += draw_replay(count, pool, float(spec.get("ratio", 0.1)), seed + index)
    return drawn


def train_config(params: dict[str, Any], seed: int, replay: list[dict], count: int) -> Any:
    """The plan's finetune params → a TrainConfig (missing params keep the TrainConfig defaults)."""
    from dialc_runtime.train.trainer import TrainConfig

    method = params.get("method") or {"kind": "lora"}
    if isinstance(method, str):
        method = {"kind": method}
    plain = ["epochs", "max_steps", "lr", "schedule", "warmup", "batch_size", "grad_accum"]
    plain += ["max_len", "packing", "merge", "save_steps"]
    settings = {key: params[key] for key in plain if params.get(key) is not None}
    lora = {key: method[key] for key in ("r", "alpha", "dropout") if method.get(key) is not None}
    if method.get("targets"):
        lora["targets"] = tuple(method["targets"])
    return TrainConfig(
        method=method.get("kind", "lora"),
        seed=seed,
        replay=replay,
        replay_ratio=len(replay) / count if count else 0.0,  # already drawn: take them all
        **settings,
        **lora,
    )


def run(ctx: StepContext) -> StepOutput:
    """Train on the kept records; an interrupted run resumes from its last checkpoint."""
    from dialc_runtime.train.trainer import train

    records, held_out = training_records(ctx)
    if not records:
        raise StepFailed("no training records: the filter kept none outside the hold-out")
    replay = replay_samples(ctx.params.get("replay") or [], len(records), ctx.seed)
    cfg = train_config(ctx.params, ctx.seed, replay, len(records))
    base = (ctx.params.get("base") or {}).get("path")
    if not base:
        raise StepFailed("finetune needs a base model with a path")
    with ExitStack() as stack:
        result = train(base, records, ctx.out_dir, cfg, progress=step_progress(ctx, stack))
    if result.dropped:
        ctx.warn(f"{result.dropped} records had no answer token within max_len; not trained on")
    summary = {
        "adapter": "adapter" if result.adapter_dir else None,  # relative to the step's out_dir
        "model": result.model_dir.name if result.model_dir else None,
        "records": len(records),
        "held_out": held_out,
        "replayed": len(replay),
        "steps": result.steps,
        "final_loss": result.final_loss,
        "tokens_per_s": round(result.tokens_per_s, 1),
        "resumed_from": result.resumed_from,
    }
    ctx.emit("result", summary)
    return StepOutput(metrics=summary)


def step_progress(ctx: Any, stack: ExitStack) -> Any:
    """A train() progress callable driving ctx.progress (opened once the step count is known)."""
    state: dict[str, Any] = {"bar": None, "step": 0}

    def report(info: dict[str, Any]) -> None:
        if state["bar"] is None:
            state["bar"] = stack.enter_context(ctx.progress(info["total_steps"], "fine-tuning"))
        state["bar"].advance(info["step"] - state["step"])
        state["step"] = info["step"]

    return report

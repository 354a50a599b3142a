"""finetune.<name>: kept records of filter.* minus the hold-out → a LoRA adapter in out_dir."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from dialc.plan import FinetuneParams, Plan, Step, Suite, TrainingParams
from dialc_runtime.data.split import held_out
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.evidence import training_warnings, warmup_steps
from dialc_runtime.evaluate.suites.readers import ChoiceItem, SuiteFormatError, read_suite
from dialc_runtime.train.samples import chat_sample, qa_sample, trainable

VERSION = "2"  # 2: no wall-clock timings in the output (they are metadata, outside its digest)


def training_records(ctx: StepContext[FinetuneParams]) -> tuple[list[dict[str, Any]], int]:
    """Chat samples of the kept records it trains on, minus the hold-out dialogues (and how many those were)."""
    samples, left_out = [], 0
    for record in ctx.role_records("records"):
        if not record.get("kept") or not trainable(record):
            continue
        if held_out(record, ctx.params.holdout):
            left_out += 1
            continue
        samples.append(chat_sample(record))
    return samples, left_out


def suite_samples(spec: Suite) -> list[dict[str, Any]]:
    """A general suite as chat samples (question → right option, or → worked solution)."""
    suite = read_suite(spec.path, spec.kind, spec.limit or None, spec.subjects)
    return [qa_sample(item.question, item.choices[item.answer] if isinstance(item, ChoiceItem)
                      else item.solution or item.answer) for item in suite.items]


def replay_samples(specs: list[Suite], count: int, seed: int) -> list[dict[str, Any]]:
    """Replay draws from every `replay` suite, each at its own ratio of the domain records."""
    from dialc_runtime.train.trainer import draw_replay

    drawn: list[dict[str, Any]] = []
    for index, spec in enumerate(specs):
        try:
            pool = suite_samples(spec)
        except SuiteFormatError as exc:
            raise StepFailed(f"replay suite: {exc}") from None
        ratio = 0.1 if spec.ratio is None else spec.ratio
        drawn += draw_replay(count, pool, ratio, seed + index)
    return drawn


TRAIN_SETTINGS = ("epochs", "max_steps", "lr", "schedule", "warmup", "batch_size", "grad_accum", "max_len",
                  "packing", "merge")


def train_config(params: TrainingParams, seed: int, replay: list[dict[str, Any]], count: int) -> Any:
    """The plan's training params → a TrainConfig (LoRA settings the spec leaves out keep its defaults)."""
    from dialc_runtime.train.trainer import TrainConfig

    method = params.method
    settings = {key: getattr(params, key) for key in TRAIN_SETTINGS}
    lora: dict[str, Any] = {key: getattr(method, key) for key in ("r", "alpha", "dropout")
                            if getattr(method, key) is not None}
    if method.targets:
        lora["targets"] = tuple(method.targets)
    return TrainConfig(
        method=method.kind,
        seed=seed,
        replay=replay,
        replay_ratio=len(replay) / count if count else 0.0,  # already drawn: take them all
        **settings,
        **lora,
    )


def run(ctx: StepContext[FinetuneParams]) -> StepOutput:
    """Train on the kept records; an interrupted run resumes from its last checkpoint."""
    from dialc_runtime.train.trainer import NoExamples, train

    records, left_out = training_records(ctx)
    if not records:
        raise StepFailed("no training records: the filter kept none outside the hold-out")
    replay = replay_samples(ctx.params.replay, len(records), ctx.seed)
    cfg = train_config(ctx.params, ctx.seed, replay, len(records))
    base = ctx.params.base.path
    with ExitStack() as stack:
        try:
            result = train(base, records, ctx.out_dir, cfg, progress=step_progress(ctx, stack),
                           checkpoints=ctx.resume_dir / "checkpoints")  # kept across attempts
        except NoExamples as exc:
            raise StepFailed(str(exc)) from None
    if result.dropped:
        ctx.warn(f"{result.dropped} records had no answer token within max_len; not trained on")
    small = training_warnings(result.examples, result.steps, cfg.warmup)
    for message in small:
        ctx.warn(message)
    summary = {
        "adapter": "adapter" if result.adapter_dir else None,  # relative to the step's out_dir
        "model": result.model_dir.name if result.model_dir else None,
        "records": len(records),
        "held_out": left_out,
        "replayed": len(replay),
        "steps": result.steps,
        "final_loss": result.final_loss,
    }
    ctx.emit("result", summary)  # the same whenever the same adapter is trained again: no timings in it
    session = {"tokens_per_s": round(result.tokens_per_s, 1), "resumed_from": result.resumed_from}
    # too small to mean much: shown beside the figures in the report
    return StepOutput(metrics={**summary, **session, "warmup_steps": warmup_steps(cfg.warmup, result.steps),
                               "warnings": small})


def step_progress(ctx: Any, stack: ExitStack) -> Any:
    """A train() progress callable driving ctx.progress (opened once the step count is known)."""
    state: dict[str, Any] = {"bar": None, "step": 0}

    def report(info: dict[str, Any]) -> None:
        if state["bar"] is None:
            state["bar"] = stack.enter_context(ctx.progress(info["total_steps"], "fine-tuning"))
        state["bar"].advance(info["step"] - state["step"])
        state["step"] = info["step"]

    return report


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """Training on the sampled records outside the hold-out (all kept, at most), no model calls."""
    from dialc_runtime.engine.estimates import holdout_size, training, upstream_count

    p = step.params
    assert isinstance(p, FinetuneParams)
    count = upstream_count(step, plan)
    records = count - holdout_size(count, p.holdout)
    return training(records, p.epochs, p.max_steps, p.batch_size * p.grad_accum)

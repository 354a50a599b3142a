"""Filtered records → the target retrained on equal-size quality tiers, each scored on gold: does quality pay?"""

from __future__ import annotations

import shutil
from typing import Any

from dialc.plan import Plan, PromptFormat, Step, StudyParams
from dialc_runtime.data.split import held_out
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.evidence import evaluation_warnings, tier_warnings
from dialc_runtime.evaluate.gold import load_items
from dialc_runtime.quality.best_of import one_per_prompt
from dialc_runtime.steps.evaluate import (
    calls_for,
    evaluate_model,
    gold_calls,
    gold_size,
    holdout_records,
    load_suites,
    score_gold,
)
from dialc_runtime.steps.finetune import train_config
from dialc_runtime.train.samples import chat_sample, trainable

# 7: per_task tiers; 6: every tier scored against the evaluation's gold references; 5: acc_norm per character,
# CMMLU prompted as lm-eval; 4: one candidate per prompt under best-of-N;
# 2: each tier's scores carry a 95% bootstrap CI; 3: tier timings are metadata (outside the digest)
VERSION = "7"
MIN_PER_TIER = 2  # fewer training records than this per tier makes the comparison meaningless


def tiers_by_quality(records: list[dict[str, Any]], tiers: int,
                     per_task: bool = False) -> list[list[dict[str, Any]]]:
    """Records with an aggregate score, best first, cut into `tiers` equal groups (the remainder,
    the lowest-scored records, is left out so every tier has the same size). `per_task`: each task's
    records are cut alone and tier i gathers every task's i-th cut, so all tiers hold the same task mix
    (an evolved task `t~op1` counts as `t`; a task with fewer records than tiers is left out)."""
    if not per_task:
        return _cut(records, tiers)
    by_task: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_task.setdefault(base_task(record), []).append(record)
    cuts = [_cut(group, tiers) for _, group in sorted(by_task.items())]
    merged = [[r for cut in cuts if cut for r in cut[i]] for i in range(tiers)]
    return merged if merged[0] else []


def base_task(record: dict[str, Any]) -> str:
    """The declared task a record answers (an evolved task `t~op1` counts as `t`)."""
    return str(record.get("task_id") or "").split("~")[0]


def _cut(records: list[dict[str, Any]], tiers: int) -> list[list[dict[str, Any]]]:
    scored = sorted((r for r in records if r.get("aggregate") is not None),
                    key=lambda r: (-float(r["aggregate"]), str(r["id"])))
    size = len(scored) // tiers
    return [scored[i * size:(i + 1) * size] for i in range(tiers)] if size else []


def training_pool(records: list[dict[str, Any]], params: StudyParams) -> list[dict[str, Any]]:
    """Every successfully labelled record outside the hold-out, kept or not: tiers span all quality; with
    best-of-N labels one record per prompt (the selected candidate), so tiers count prompts, as the set does."""
    return [r for r in one_per_prompt(records) if trainable(r) and not held_out(r, params.holdout)]


def run(ctx: StepContext[StudyParams]) -> StepOutput:
    from dialc_runtime.evaluate.scoring import HFModel

    p = ctx.params
    records = list(ctx.role_records("records"))
    tiers = tiers_by_quality(training_pool(records, p), p.tiers, p.per_task)
    if not tiers or len(tiers[0]) < MIN_PER_TIER:
        raise StepFailed(f"too few scored records for {p.tiers} tiers of at least {MIN_PER_TIER}: "
                         "raise sample.count")
    suites = load_suites(p.general, p.limit)
    holdout = holdout_records(records, p.holdout)
    gold = load_items(p.gold, p.prompt or PromptFormat(), p.gold_limit, ctx.seed) if p.gold is not None else []
    base = p.base.path
    max_tokens = p.base.max_tokens
    rows = [ctx.done[k] for k in sorted(ctx.done)]
    with ctx.progress(len(tiers), "training quality tiers") as bar:
        bar.advance(len(rows))
        for index in range(len(rows), len(tiers)):
            adapter = _train_tier(ctx, base, tiers[index], index)
            lm = HFModel.load(base, adapter)
            results = {**evaluate_model(lm, suites, holdout, max_tokens), **score_gold(lm, gold, max_tokens)}
            ctx.account(model_calls=calls_for(suites, holdout) + gold_calls(gold))
            row = _row(index, tiers[index], results)
            ctx.emit(f"tier-{index + 1}", row)
            rows.append(row)
            bar.advance()
    _publish_tiers(ctx, len(rows))
    metrics = study_metrics(rows)
    metrics["warnings"] = study_warnings(rows)
    for message in metrics["warnings"]:
        ctx.warn(message)
    return StepOutput(metrics=metrics, message=format_study(rows))


def _train_tier(ctx: StepContext[StudyParams], base: str, records: list[dict[str, Any]], index: int) -> Any:
    from dialc_runtime.train.trainer import NoExamples, train

    cfg = train_config(ctx.params, ctx.seed, [], len(records))
    try:  # tiers are trained where they survive an interrupted attempt, and copied into the output at the end
        result = train(base, [chat_sample(r) for r in records], ctx.resume_dir / f"tier-{index + 1}", cfg)
    except NoExamples as exc:
        raise StepFailed(f"tier {index + 1}: {exc}") from None
    return result.adapter_dir


def _publish_tiers(ctx: StepContext[StudyParams], count: int) -> None:
    """Every tier's adapter in the output, those trained by an earlier, interrupted attempt included."""
    for index in range(count):
        trained = ctx.resume_dir / f"tier-{index + 1}"
        if trained.is_dir():
            shutil.copytree(trained, ctx.out_dir / trained.name, dirs_exist_ok=True)


def _row(index: int, records: list[dict[str, Any]], results: dict[str, Any]) -> dict[str, Any]:
    """One tier: its quality range, and per suite its score in points with n, a 95% bootstrap CI and the item
    scores (every tier and the evaluation score the same items, so differences between them can be paired)."""
    from dialc_runtime.evaluate.scoring import bootstrap_ci

    quality = [float(r["aggregate"]) for r in records]
    cis = {name: bootstrap_ci(r.items[r.primary]) for name, r in results.items()}
    return {"tier": index + 1, "records": len(records), "mean_quality": round(sum(quality) / len(quality), 4),
            "min_quality": round(min(quality), 4), "max_quality": round(max(quality), 4),
            "scores": {name: round(100 * r.score, 2) for name, r in results.items()},
            "n": {name: r.n for name, r in results.items()},
            "ci": {name: [round(100 * lo, 2), round(100 * hi, 2)] for name, (lo, hi) in cis.items()},
            "items": {name: [round(float(x), 4) for x in r.items[r.primary]] for name, r in results.items()}}


def study_warnings(rows: list[dict[str, Any]]) -> list[str]:
    """Tiers of a few records, and suites of a few items (every tier is scored on the same items)."""
    first = rows[0]["n"] if rows else {}
    return tier_warnings(rows) + evaluation_warnings([{"suite": name, "n": n} for name, n in first.items()])


def study_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per suite: the Spearman rank correlation between tier quality and score (the paper's finding)."""
    from scipy.stats import spearmanr

    suites = sorted({name for row in rows for name in row["scores"]})
    correlation: dict[str, Any] = {}
    for name in suites:
        pairs = [(row["mean_quality"], row["scores"][name]) for row in rows if name in row["scores"]]
        if len(pairs) < 3 or len({s for _, s in pairs}) < 2:
            correlation[name] = None  # undefined: too few tiers or equal scores
            continue
        rho = spearmanr([q for q, _ in pairs], [s for _, s in pairs]).statistic
        correlation[name] = round(float(rho), 4)
    return {"tiers": rows, "spearman": correlation}


def format_study(rows: list[dict[str, Any]]) -> str:
    suites = sorted({name for row in rows for name in row["scores"]})
    head = "tier  records  quality  " + "  ".join(f"{s:>14}" for s in suites)
    lines = [head] + [f"{r['tier']:>4}  {r['records']:>7}  {r['mean_quality']:>7.3f}  "
                      + "  ".join(f"{r['scores'].get(s, float('nan')):>14.1f}" for s in suites) for r in rows]
    return "\n".join(lines)


def estimate(step: Step, plan: Plan) -> dict[str, int | float]:
    """Per tier: a fine-tune on a third (say) of the labels outside the hold-out, then an evaluation."""
    from dialc_runtime.engine.estimates import combine, evaluation, holdout_size, training, upstream_count

    p = step.params
    assert isinstance(p, StudyParams)
    count = upstream_count(step, plan)
    held = holdout_size(count, p.holdout)
    tier = training((count - held) // max(p.tiers, 1), p.epochs, p.max_steps, p.batch_size * p.grad_accum)
    generations = held + gold_size(p, plan)
    return combine(*[combine(tier, evaluation(p.general, p.limit, generations, p.base)) for _ in range(p.tiers)])

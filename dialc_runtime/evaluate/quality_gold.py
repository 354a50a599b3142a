"""Gold items → the labeller's candidates → quality verdicts and the filter's decision → gold correctness.

The quality check of `quality { calibrate = gold(NAME) }` (step `calibrate.<quality>`), of
`dialc calibrate SPEC --gold` and of bench/experiment_best_of_n.py. Each gold item (dialogue × task)
becomes a production prompt asked the way the training prompts are (PromptFormat); the labeller
answers it as the label step would (its model and decoding settings, `candidates` answers with the
label step's seeds); every quality dimension of the block scores every answer with the score steps'
own functions; the filter's rule decides (gates, aggregate, keep rule, best-of-N selection); and each
answer's correctness is its primary gold metric (gold_metrics). quality/predictive.py turns the pairs
into Spearman, AUC and precision figures.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dialc.plan import CalibrateParams, ModelSpec
from dialc_runtime.data.seeds import record_seed
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.gold import GoldItem, load_dialogues, load_items
from dialc_runtime.evaluate.gold_metrics import PRIMARY, item_scores
from dialc_runtime.quality.aggregate import MISSING, Decision, Dimension, decide, parse_dimensions
from dialc_runtime.quality.best_of import candidate_fields, select_best
from dialc_runtime.quality.keep import RuleError
from dialc_runtime.quality.predictive import (
    AGGREGATE,
    CORRECT_TEXT,
    Pair,
    Predictiveness,
    format_table,
    is_correct,
    predictiveness,
)
from dialc_runtime.quality.verdict import Verdict

Backends = Callable[[Any], Any]  # a model spec (or its dict) → a backend with generate / score
Progress = Callable[[int, str], Any]  # (total, what) → a context manager with .advance(n)
JUDGE_BATCH = 8


class _NoBar:
    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None


def no_progress(total: int, what: str) -> _NoBar:
    return _NoBar()


@dataclass
class QualityCheck:
    """Every candidate with its verdicts, decision and correctness, and the figures made of them."""

    records: list[dict[str, Any]]  # candidates: label fields + scores, quality, aggregate, kept, correctness …
    dimensions: list[Predictiveness]  # one per dimension, then the aggregate (AGGREGATE)
    best_of: dict[str, Any] = field(default_factory=dict)  # N = 1 vs best of N on the same prompts (N > 1)


# ---- prompts and labels ---------------------------------------------------------------------------------


def prompt_record(item: GoldItem, expression: dict[str, str]) -> dict[str, Any]:
    """A gold item as the label step's input: a production prompt (id = the item's id)."""
    return {"id": item.id, "dialogue_id": item.dialogue_id, "scenario": item.scenario, "task_id": item.task.id,
            "category": item.task.category, "instruction": item.task.instruction, "expression": dict(expression),
            "output": item.constraint(), "messages": item.messages}


def label(backends: Backends, model: ModelSpec, prompts: list[dict[str, Any]], candidates: int, seed: int,
          progress: Progress = no_progress) -> list[dict[str, Any]]:
    """Each prompt answered `candidates` times by the labeller, with the label step's requests (seeds) and
    record shape (prompt order, then candidate order)."""
    from dialc_runtime.steps.label import _label_fields, request_for

    backend = backends(model)
    todo = [(p, k) for p in prompts for k in range(candidates)]
    out: list[dict[str, Any]] = []
    with progress(len(todo), "labelling gold items") as bar:
        for start in range(0, len(todo), model.batch_size):
            batch = todo[start:start + model.batch_size]
            results = backend.generate([request_for(p, model, seed, k) for p, k in batch])
            for (prompt, k), result in zip(batch, results, strict=True):
                labelled = {**prompt, **candidate_fields(str(prompt["id"]), k, candidates),
                            **_label_fields(result, model)}
                if result.transport:  # no answer at all: a failed label, never an answer
                    labelled.update(ok=False, error=f"no answer: {result.error}")
                out.append(labelled)
            bar.advance(len(batch))
    return out


# ---- scores ---------------------------------------------------------------------------------------------


def score_dimension(backends: Backends, dim: dict[str, Any], records: list[dict[str, Any]],
                    dialogues: dict[str, dict[str, Any]], seed: int,
                    progress: Progress = no_progress) -> dict[str, dict[str, Any]]:
    """One dimension's verdict records for every candidate, by id (the score step's functions)."""
    from dialc_runtime.quality.grounding import score_grounding
    from dialc_runtime.quality.judge import JudgeSpec, judge_records
    from dialc_runtime.quality.rules import score_rule
    from dialc_runtime.steps.score import SKIPPED, load_tokenizer, score_dedup

    kind = dim["kind"]
    verdicts: dict[str, Verdict] = {}
    usable = [r for r in records if r.get("ok", True)]
    for record in records:
        if not record.get("ok", True):
            verdicts[str(record["id"])] = SKIPPED
    if kind == "rule":
        params = load_tokenizer(dim)
        verdicts.update((str(r["id"]), score_rule(r, params)) for r in usable)
    elif kind == "grounding":
        verdicts.update((str(r["id"]), score_grounding(r, dialogues.get(str(r["dialogue_id"])), dim)) for r in usable)
    elif kind == "dedup":
        verdicts.update(score_dedup(records, dim)[0])
    elif kind == "judge":
        spec = JudgeSpec.from_params(dim)
        backend = backends(dim["model"])
        size = int(dim["model"].get("batch_size") or JUDGE_BATCH)
        with progress(len(usable), f"judging {dim['name']} on gold items") as bar:
            for start in range(0, len(usable), size):
                batch = usable[start:start + size]
                found, _ = judge_records(backend, spec, [(r, dialogues.get(str(r["dialogue_id"]))) for r in batch],
                                         [record_seed(seed, str(r["id"])) for r in batch])
                verdicts.update((str(r["id"]), v) for r, v in zip(batch, found, strict=True))
                bar.advance(len(batch))
    else:
        raise StepFailed(f"unknown dimension kind {kind!r} (rule, grounding, judge, dedup)")
    return {key: verdict.record(key) for key, verdict in verdicts.items()}


def decide_each(records: list[dict[str, Any]], scores: dict[str, dict[str, dict[str, Any]]],
                dims: dict[str, Dimension], keep: Any) -> list[Decision]:
    """The filter's decision for every candidate on its own (gates, aggregate, keep rule)."""
    try:
        return [decide(r, {n: s.get(str(r["id"]), MISSING) for n, s in scores.items()}, dims, keep) for r in records]
    except RuleError as exc:
        raise StepFailed(str(exc)) from exc


# ---- correctness ----------------------------------------------------------------------------------------


def answer_text(record: dict[str, Any]) -> str:
    """What the label says, as text the gold metrics read (JSON labels as their parsed value)."""
    value = record.get("value")
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(record.get("answer") or ("" if value is None else value))


def correctness(record: dict[str, Any], item: GoldItem) -> dict[str, Any]:
    """The label's gold metrics, its primary one as `correctness` and whether that counts as correct; an
    invalid label is wrong (correctness 0)."""
    kind = item.kind
    metrics = item_scores(kind, answer_text(record), item.reference, item.constraint()) if record.get("ok") else {}
    value = float(metrics.get(PRIMARY.get(kind, "rouge_l"), 0.0))
    out = {"correctness": round(value, 4), "correct": is_correct(kind, value)}
    if "hallucinated" in metrics and metrics.get("gold_nulls"):
        out.update(hallucinated=int(metrics["hallucinated"]), gold_nulls=int(metrics["gold_nulls"]))
    elif kind == "json" and not record.get("ok"):
        nulls = sum(1 for v in (item.reference or {}).values() if v is None)
        if nulls:
            out.update(hallucinated=0, gold_nulls=nulls)
    return out


# ---- the whole check ------------------------------------------------------------------------------------


def run_check(params: CalibrateParams, backends: Backends, progress: Progress = no_progress,
              seed: int | None = None) -> QualityCheck:
    """Label, score, decide and compare with gold; the figures per dimension and, for N > 1, best-of-N."""
    seed = params.seed if seed is None else seed
    dialogues = load_dialogues(params.gold, params.gold_limit, seed)
    items = load_items(params.gold, params.prompt, dialogues=dialogues)
    if not items:
        raise StepFailed(f"test set '{params.gold.name}' has no item for the tasks it scores")
    by_item = {i.id: i for i in items}
    prompts = [prompt_record(i, params.prompt.expression) for i in items]
    records = label(backends, params.model, prompts, params.candidates, seed, progress)
    by_dialogue = {str(d["id"]): d for d in dialogues}
    dims_json = [d.model_dump(mode="json") for d in params.dimensions]
    scores = {d["name"]: score_dimension(backends, d, records, by_dialogue, seed, progress) for d in dims_json}
    dims = parse_dimensions({n: w.model_dump() for n, w in params.weights.items()})
    dims.update({n: Dimension(n) for n in scores if n not in dims})
    alone = decide_each(records, scores, dims, params.keep)
    chosen, extra = select_best(records, alone)
    rows = []
    for record, own, final, more in zip(records, alone, chosen, extra, strict=True):
        verdicts = {n: s.get(str(record["id"]), MISSING) for n, s in scores.items()}
        item = by_item[str(record.get("prompt_id") or record["id"])]
        rows.append({**record, "item": item.id, "reference": item.reference, "kind": item.kind,
                     "scores": {n: v.get("score") for n, v in verdicts.items()},
                     "passed": {n: v.get("passed") for n, v in verdicts.items()},
                     "aggregate": own.aggregate, "kept_alone": own.kept, "kept": final.kept, "reason": final.reason,
                     "cause": final.cause, **more, **correctness(record, item)})
    figures = dimension_figures(rows, [d["name"] for d in dims_json], seed)
    return QualityCheck(rows, figures, best_of_figures(rows, seed) if params.candidates > 1 else {})


def dimension_figures(rows: list[dict[str, Any]], names: list[str], seed: int) -> list[Predictiveness]:
    """Each dimension's score and pass against correctness (every candidate, each on its own), then the
    aggregate's score and the filter's keep decision: pooled over every task, then per task (when several)."""
    tasks = list(dict.fromkeys(str(r["task_id"]) for r in rows))
    scopes = [("", rows), *([(t, [r for r in rows if r["task_id"] == t]) for t in tasks] if len(tasks) > 1 else [])]
    out = []
    for task, members in scopes:
        for n, name in enumerate(names):
            pairs = [Pair(r["scores"].get(name), r["passed"].get(name) if r["scores"].get(name) is not None else
                          None, r["correctness"], r["correct"], _prompt(r)) for r in members]
            out.append(predictiveness(name, pairs, seed + 10 * n, task))
        pairs = [Pair(r["aggregate"], r["kept_alone"], r["correctness"], r["correct"], _prompt(r)) for r in members]
        out.append(predictiveness(AGGREGATE, pairs, seed + 10 * len(names), task))
    if len(tasks) > 1:  # kinds differ in how scores and correctness run: the pooled verdict is not the per-task one
        for pooled in out[:len(names) + 1]:
            pooled.verdict += " (pooled over tasks: read the per-task rows)"
    return out


# ---- best of N vs a single label ------------------------------------------------------------------------


def _prompt(record: dict[str, Any]) -> str:
    return str(record.get("prompt_id") or record.get("id") or "")


def _kept_figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy (correct share), mean correctness and hallucination rate of the kept labels among `rows`."""
    kept = [r for r in rows if r is not None and r.get("kept_final")]
    nulls = sum(int(r.get("gold_nulls") or 0) for r in kept)
    return {"prompts": len(rows), "kept": len(kept),
            "accuracy": sum(r["correct"] for r in kept) / len(kept) if kept else None,
            "correctness": sum(r["correctness"] for r in kept) / len(kept) if kept else None,
            "hallucination": sum(int(r.get("hallucinated") or 0) for r in kept) / nulls if nulls else None,
            "null_fields": nulls}


def per_prompt(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(single label, best-of-N pick) per prompt: candidate 0 judged alone (what N = 1 keeps), and the
    selected candidate after selection (or candidate 0, rejected, when none could be selected)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r.get("prompt_id") or r["id"]), []).append(r)
    out = []
    for members in groups.values():
        first = min(members, key=lambda r: int(r.get("candidate") or 0))
        pick = next((r for r in members if r.get("selected")), None)
        single = {**first, "kept_final": first["kept_alone"]}
        best = {**pick, "kept_final": pick["kept"]} if pick is not None else {**first, "kept_final": False}
        out.append((single, best))
    return out


def best_of_figures(rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """N = 1 (candidate 0, what a single label is) vs best of N on the same prompts: kept, accuracy and
    hallucination of the kept labels, with paired bootstrap intervals of the change (prompts resampled);
    over every prompt, then per task (when several)."""
    out = compare_single_best(per_prompt(rows), seed)
    out["n"] = max((int(r.get("candidates") or 1) for r in rows), default=1)
    tasks = list(dict.fromkeys(str(r["task_id"]) for r in rows))
    if len(tasks) > 1:
        out["tasks"] = {t: compare_single_best([p for p in per_prompt(rows) if p[0]["task_id"] == t], seed)
                        for t in tasks}
    return out


def compare_single_best(pairs: list[tuple[dict[str, Any], dict[str, Any]]], seed: int) -> dict[str, Any]:
    """The kept figures of the single labels and of the best-of-N picks, and intervals of their differences."""
    import random

    one, best = _kept_figures([p[0] for p in pairs]), _kept_figures([p[1] for p in pairs])
    out: dict[str, Any] = {"single": one, "best": best, "delta_ci": {}}
    rng = random.Random(seed)
    for metric in ("accuracy", "correctness", "hallucination", "kept"):
        diffs = []
        for _ in range(1000):
            sample = [pairs[rng.randrange(len(pairs))] for _ in pairs]
            a, b = _kept_figures([p[0] for p in sample])[metric], _kept_figures([p[1] for p in sample])[metric]
            if a is not None and b is not None:
                diffs.append(b - a)
        if len(diffs) >= 500:
            diffs.sort()
            out["delta_ci"][metric] = (diffs[int(0.025 * len(diffs))], diffs[min(len(diffs) - 1,
                                                                                 int(0.975 * len(diffs)))])
    return out


def format_best_of(figures: dict[str, Any]) -> str:
    """The N = 1 vs best-of-N rows as aligned text: every prompt, then each task."""
    if not figures:
        return ""
    parts = [_best_of_rows(figures, figures["n"], "")]
    parts += [_best_of_rows(f, figures["n"], task) for task, f in (figures.get("tasks") or {}).items()]
    return "\n\n".join(parts)


BEST_OF_METRICS = (("kept", "kept", 1), ("accuracy", "accuracy (correct share of kept), %", 100),
                   ("correctness", "mean correctness of kept, %", 100),
                   ("hallucination", "hallucination rate of kept (lower is better), %", 100))  # key, label, scale


def best_of_change(figures: dict[str, Any], metric: str, scale: float = 100) -> str:
    """Best of N − single, scaled, with its 95% interval: "+8.7 [+2.0, +16.7]" ("–" when either is missing)."""
    a, b = figures["single"][metric], figures["best"][metric]
    if a is None or b is None:
        return "–"
    ci = figures["delta_ci"].get(metric)
    interval = f" [{scale * ci[0]:+.1f}, {scale * ci[1]:+.1f}]" if ci else ""
    return f"{scale * (b - a):+.1f}{interval}"


def _best_of_rows(figures: dict[str, Any], n: int, task: str) -> str:
    one, best = figures["single"], figures["best"]

    def shown(value: Any, scale: float) -> Any:
        """Counts as they are, shares in percent."""
        if scale == 1:
            return value
        return "–" if value is None else f"{100 * value:.1f}"

    title = f"kept labels on {one['prompts']} gold prompts" + (f" of {task}" if task else "")
    lines = [f"{title:<44} {'N = 1':>8} {'N = ' + str(n):>8}  change [95% CI]"]
    lines += [f"{label:<44} {shown(one[key], scale):>8} {shown(best[key], scale):>8}  "
              f"{best_of_change(figures, key, scale)}" for key, label, scale in BEST_OF_METRICS]
    return "\n".join(lines)


# ---- what is shown ----------------------------------------------------------------------------------------


def figures(check: QualityCheck) -> dict[str, Any]:
    """What the step's metrics, the report and `dialc calibrate --gold` show."""
    return {"dimensions": [d.to_dict() for d in check.dimensions], "best_of": check.best_of,
            "correct_means": CORRECT_TEXT, "labels": len(check.records),
            "gold_items": len({r["item"] for r in check.records})}


def render(shown: dict[str, Any]) -> str:
    """The predictiveness table and (best-of-N) the single vs best-of-N rows, from `figures`."""
    rows = [Predictiveness(**{**d, "rho_ci": _pair(d.get("rho_ci")), "auc_ci": _pair(d.get("auc_ci")),
                              "kept_ci": _pair(d.get("kept_ci")), "rejected_ci": _pair(d.get("rejected_ci"))})
            for d in shown.get("dimensions") or []]
    parts = [f"does quality predict correctness? {shown.get('labels')} labels of {shown.get('gold_items')} gold "
             f"items; correct = {shown.get('correct_means', CORRECT_TEXT)}", format_table(rows)]
    if shown.get("best_of"):
        parts.append(format_best_of(shown["best_of"]))
    return "\n\n".join(parts)


def _pair(value: Any) -> tuple[float, float] | None:
    return (float(value[0]), float(value[1])) if isinstance(value, list | tuple) and len(value) == 2 else None


# ---- `dialc calibrate SPEC --gold` ----------------------------------------------------------------------


def stored_figures(run_dir: Any, step: Any) -> dict[str, Any] | None:
    """The figures of the run's calibrate step when it ran (or was reused) with the params the spec has now."""
    from pathlib import Path

    from dialc_runtime.engine.layout import RunLayout
    from dialc_runtime.engine.results import load_results

    layout = RunLayout(Path(run_dir))
    try:
        results = load_results(layout.results)
        plan = json.loads(layout.plan.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    done = next((s for s in results.steps if s.id == step.id and s.status in ("ok", "cached")), None)
    then = next((s.get("params") for s in plan.get("steps", []) if isinstance(s, dict) and s.get("id") == step.id),
                None)
    if done is None or not done.metrics.get("dimensions") or then != step.params_json():
        return None
    return dict(done.metrics)

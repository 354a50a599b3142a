"""Dialogues, tasks and expressions → production prompts (weighted, balanced, without replacement).

A global step (the draw balances over every dialogue): it holds each dialogue's id and scenario and the
draws; the dialogues themselves are read a page of prompts at a time, when the prompts are rendered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from dialc.mix import CELL_KEYS, Cell, cell_weights, holdable_count, minimum_shortfall, short_cells
from dialc.plan import SampleParams
from dialc_runtime.data.prompts import output_format, render_prompt, transcript
from dialc_runtime.data.sampling import balance_report, cell_capacity, declared_weights, draw_prompts
from dialc_runtime.data.seeds import rng
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.errors import StepFailed

VERSION = "3"  # 3: nullable enum fields say "or null"; 2: min_per per balance-key value, text bound in words
PAGE = 500  # prompts rendered per look-up of their dialogues


def run(ctx: StepContext[SampleParams]) -> StepOutput:
    p = ctx.params
    dialogues, tasks, paraphrases = _inputs(ctx)
    if not dialogues:
        raise StepFailed("no dialogues to sample from (the source produced no records)")
    if not tasks:
        raise StepFailed("no usable tasks to sample (all filtered or rejected in review)")
    weights, capacity = cell_capacity(dialogues, tasks, p.axes, p)
    shortfall = minimum_shortfall(_values(weights, p), p.count, p.min_per)
    if shortfall is not None:
        raise StepFailed(f"{shortfall}: lower min_per or raise count")
    mix = _mix(ctx, weights, capacity, p.count)
    draws = draw_prompts(dialogues, tasks, p.axes, p, ctx.seed)
    if len(draws) < p.count:
        ctx.warn(f"only {len(draws)} distinct dialogue × task × expression combinations; count is {p.count}")
    for key, value, n in below_minimum(draws, weights, p):
        ctx.warn(f"min_per = {p.min_per} not met: {key} {value} has {n} prompts (the corpus holds no more)")
    by_task = {t["id"]: t for t in tasks}
    for index, draw, dialogue in with_dialogues(ctx, draws, dialogues):
        record = _record(ctx.step.name, index, draw, dialogue, by_task[draw.task],
                         paraphrases.get(draw.task, []), p, ctx.seed)
        ctx.emit(f"{index:06d}", record)
    return StepOutput(metrics={"prompts": len(draws), "balance": _balance(draws, dialogues, tasks, p),
                               "capacity": mix})


def below_minimum(draws: Sequence[Any], weights: dict[Cell, float], p: SampleParams) -> list[tuple[str, str, int]]:
    """(key, value, prompts) of each scenario/category value that drew fewer than min_per prompts."""
    if not p.min_per:
        return []
    out = []
    for i, key in enumerate(CELL_KEYS):
        if key in p.balance:
            got = Counter(getattr(d, key) for d in draws)
            out += [(key, v, got[v]) for v in sorted({c[i] for c in weights}) if got[v] < p.min_per]
    return out


def _values(weights: dict[Cell, float], p: SampleParams) -> dict[str, int]:
    """How many values each balance key has (what min_per multiplies)."""
    values = {key: len({cell[i] for cell in weights}) for i, key in enumerate(CELL_KEYS) if key in p.balance}
    values.update({axis: sum(1 for w in p.axes[axis].values() if w > 0) for axis in p.balance if axis in p.axes})
    return values


def _mix(ctx: StepContext[SampleParams], weights: dict[Cell, float], capacity: dict[Cell, int],
         count: int) -> dict[str, Any]:
    """Capacity per cell against the declared mix: a cell that cannot hold its share is warned about,
    with the count the mix can hold (the excess is drawn from other cells and skews the balance)."""
    short = short_cells(weights, capacity, count)
    holdable = holdable_count(weights, capacity)
    if short:
        cells = "; ".join(f"{s} × {c} holds {cap} distinct prompts for a share of {share}"
                          for (s, c), share, cap in short[:5])
        ctx.warn(f"the corpus cannot follow its declared mix at count = {count}: {cells}; at most count = "
                 f"{holdable} keeps the declared weights (the rest is drawn from other cells)")
    return {"holdable_count": holdable,
            "short": [{"scenario": s, "category": c, "share": share, "capacity": cap} for (s, c), share, cap in short]}


def with_dialogues(ctx: StepContext[SampleParams], draws: Sequence[Any], dialogues: list[dict[str, Any]]
                   ) -> Iterator[tuple[int, Any, dict[str, Any]]]:
    """(index, draw, its whole dialogue), the dialogues of a page of draws read from the store at once."""
    where = {d["id"]: (d["_step"], d["_key"]) for d in dialogues}  # the last of an id wins, as in a dict
    numbered = enumerate(draws)
    while page := list(islice(numbered, PAGE)):
        keys: dict[str, set[str]] = {}
        for _, draw in page:
            step_id, key = where[draw.dialogue]
            keys.setdefault(step_id, set()).add(key)
        found = {}
        for step_id, wanted in keys.items():
            found.update({(step_id, k): d for k, d in ctx.lookup(step_id, sorted(wanted)).items()})
        for index, draw in page:
            yield index, draw, found[where[draw.dialogue]]


def _inputs(ctx: StepContext[SampleParams]) -> tuple[list[dict[str, Any]], list[dict[str, Any]],
                                                     dict[str, list[str]]]:
    """Dialogues (id, scenario and where each is stored: the draw needs no more), usable tasks, and the usable
    paraphrases of each task's instruction, read by role: from the expressions step, or (behind a review
    gate) from the reviewed task set itself."""
    dialogues = [{"id": d["id"], "scenario": d["scenario"], "_step": step_id, "_key": key}
                 for step_id in ctx.role("dialogues") for key, d in ctx.items(step_id)]
    records = [r for role in ("tasks", "expressions") for r in ctx.role_records(role) if not r.get("filtered")]
    tasks = [t for t in ctx.role_records("tasks") if not t.get("filtered") and t.get("kind") != "paraphrase"]
    paraphrases: dict[str, list[str]] = {}
    for r in records:
        if r.get("kind") == "paraphrase" and r.get("instruction"):
            paraphrases.setdefault(r["task_id"], []).append(r["instruction"])
    return dialogues, tasks, paraphrases


def _record(name: str, index: int, draw: Any, dialogue: dict[str, Any], task: dict[str, Any],
            paraphrases: list[str], p: SampleParams, seed: int) -> dict[str, Any]:
    instruction = task["instruction"]
    phrasing = "original"
    if paraphrases:  # the paraphrase is one more expression axis, drawn uniformly with the original
        choice = rng(seed, "phrasing", index).randrange(len(paraphrases) + 1)
        if choice:
            instruction, phrasing = paraphrases[choice - 1], f"paraphrase-{choice}"
    expression = dict(draw.expression)
    values = {**expression, **template_values(dialogue, task, instruction, draw, _description(p, draw.scenario))}
    return {"id": f"{name}-{index:06d}", "dialogue_id": draw.dialogue, "scenario": draw.scenario,
            "task_id": task["id"], "category": draw.category, "instruction": instruction,
            "expression": expression, "output": task["output"],
            "messages": render_prompt(p.template, p.system, values),
            "lineage": {"task_origin": task.get("origin", "declared"), "chain": task.get("chain", []),
                        "phrasing": phrasing, "reviewed": task.get("reviewed")}}


def template_values(dialogue: dict[str, Any], task: dict[str, Any], instruction: str, draw: Any,
                    description: str) -> dict[str, str]:
    """What a prompt template's placeholders stand for: exactly dialc.schema.TEMPLATE_PLACEHOLDERS
    (plus the expression axes), so `validate` and the runtime agree on which names exist."""
    return {"dialogue": transcript(dialogue), "instruction": instruction, "scenario": draw.scenario,
            "scenario_description": description, "category": draw.category,
            "output_format": output_format(task["output"]), "task_id": task["id"]}


def _description(p: SampleParams, scenario: str) -> str:
    known = p.scenarios.get(scenario)
    return known.description if known is not None else scenario


def _balance(draws: Sequence[Any], dialogues: list[dict[str, Any]], tasks: list[dict[str, Any]],
             p: SampleParams) -> dict[str, Any]:
    scenario_weights = {k: v.weight for k, v in p.scenarios.items()}
    cells = cell_weights(dialogues, tasks, scenario_weights, p.balance)
    keys = list(dict.fromkeys([*p.balance, "scenario", "category"]))
    return {key: balance_report(draws, declared_weights(cells, p.axes, key), key) for key in keys}

"""A gold test set (GoldSet) → items (dialogue × task, prompt, reference) → a model's answers → scored results.

Items are asked the way the training prompts were (the sample's template and system prompt, each
expression axis at its most weighted value: PromptFormat). Choice tasks are answered by
log-likelihood (the option the model finds most likely as its whole answer, which is what
constrained decoding approximates); the others by greedy generation, with a token budget sized to
the task's output.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dialc.plan import GoldSet, IngestParams, PromptFormat, TaskSpec
from dialc.references import read_references
from dialc_runtime.data.pii import scrub
from dialc_runtime.data.prompts import output_format, render_prompt, transcript
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.gold_metrics import PRIMARY, item_scores, micro
from dialc_runtime.evaluate.scoring import LM, SuiteResult, mean
from dialc_runtime.evaluate.semantic import similarity

JSON_TOKENS, TOKENS_PER_FIELD = 16, 12  # generation budget of a JSON answer: braces, then a field's name and value
CHARS_PER_TOKEN = 3  # text answers: a budget of max_chars / 3 tokens (English runs at about 4 characters a token)
REGEX_TOKENS = 8


@dataclass(frozen=True)
class GoldItem:
    """One question of the test set: a dialogue, a task, the prompt put to the model and the reference."""

    id: str  # "<dialogue id>/<task id>"
    dialogue_id: str
    scenario: str
    task: TaskSpec
    messages: list[dict[str, str]]
    reference: Any

    @property
    def kind(self) -> str:
        return self.task.output.kind

    def constraint(self) -> dict[str, Any]:
        return self.task.output.model_dump(mode="json", by_alias=True)


def sample(dialogues: list[dict[str, Any]], limit: int, seed: int) -> list[dict[str, Any]]:
    """At most `limit` dialogues (0 = all), chosen by a seeded hash of their ids, kept in file order."""
    if not limit or len(dialogues) <= limit:
        return dialogues
    rank = sorted(dialogues, key=lambda d: hashlib.sha256(f"{seed}:{d['id']}".encode()).hexdigest())
    chosen = {d["id"] for d in rank[:limit]}
    return [d for d in dialogues if d["id"] in chosen]


def load_dialogues(gold: GoldSet, limit: int = 0, seed: int = 0) -> list[dict[str, Any]]:
    """The sampled dialogues of the test set, read with its ingest mapping (PII scrubbed when it says so)."""
    from dialc_runtime.steps.ingest import read_dialogues

    ingest = IngestParams(path=gold.path, format=gold.format, fields=gold.fields, roles=gold.roles)
    dialogues, problems = read_dialogues(Path(gold.path), ingest)
    if problems:
        shown = "\n  ".join(problems[:5])
        raise StepFailed(f"test set '{gold.name}' has unreadable rows (validate reports them):\n  {shown}")
    chosen = sample(dialogues, limit, seed)
    if gold.pii_scrub:
        for dialogue in chosen:
            for turn in dialogue["turns"]:
                turn["text"] = scrub(turn["text"])[0]
    return chosen


def load_items(gold: GoldSet, prompt: PromptFormat, limit: int = 0, seed: int = 0,
               dialogues: list[dict[str, Any]] | None = None) -> list[GoldItem]:
    """Every (dialogue, task that applies to its scenario) pair of the sampled dialogues (or of `dialogues`,
    as load_dialogues returns them), in file order then task order."""
    references, bad = read_references(Path(gold.references))
    if bad:
        shown = "\n  ".join(f"{gold.references}:{b.removeprefix('line ')}" for b in bad[:5])
        raise StepFailed(f"test set '{gold.name}' has unreadable rows (validate reports them):\n  {shown}")
    items = []
    for dialogue in load_dialogues(gold, limit, seed) if dialogues is None else dialogues:
        answers = references.get(dialogue["id"], (0, {}))[1]
        for task in gold.tasks:
            if task.scenarios and dialogue["scenario"] not in task.scenarios:
                continue
            if task.id not in answers:
                raise StepFailed(f"test set '{gold.name}': dialogue {dialogue['id']!r} has no reference for "
                                 f"task {task.id} in {gold.references}")
            items.append(GoldItem(id=f"{dialogue['id']}/{task.id}", dialogue_id=dialogue["id"],
                                  scenario=dialogue["scenario"], task=task, messages=messages(dialogue, task, prompt),
                                  reference=answers[task.id]))
    return items


def messages(dialogue: dict[str, Any], task: TaskSpec, prompt: PromptFormat) -> list[dict[str, str]]:
    """The chat prompt for one item: the training template's placeholders (dialc.schema.TEMPLATE_PLACEHOLDERS)."""
    scenario = dialogue["scenario"]
    known = prompt.scenarios.get(scenario)
    output = task.output.model_dump(mode="json", by_alias=True)
    values = {**prompt.expression, "dialogue": transcript(dialogue), "instruction": task.instruction,
              "scenario": scenario, "scenario_description": known.description if known else scenario,
              "category": task.category, "output_format": output_format(output), "task_id": task.id}
    return render_prompt(prompt.template, prompt.system, values)


def token_budget(item: GoldItem, max_tokens: int) -> int:
    """New tokens for an answer: enough for the task's output, never more than the model's max_tokens."""
    constraint = item.constraint()
    if item.kind == "json":
        wanted = JSON_TOKENS + TOKENS_PER_FIELD * len(constraint["schema"].get("properties", {}))
    elif item.kind == "text":
        wanted = math.ceil(int(constraint.get("max_chars", 400)) / CHARS_PER_TOKEN)
    else:
        wanted = REGEX_TOKENS
    return max(1, min(max_tokens, wanted))


def answer(lm: LM, items: list[GoldItem], max_tokens: int) -> list[str]:
    """The model's answer to each item: choices by log-likelihood, the rest generated in batches per task."""
    outputs = [""] * len(items)
    for task_id in dict.fromkeys(item.task.id for item in items):
        index = [i for i, item in enumerate(items) if item.task.id == task_id]
        group = [items[i] for i in index]
        if group[0].kind == "choice":
            found = choose(lm, group)
        else:
            found = lm.generate([item.messages for item in group], token_budget(group[0], max_tokens))
        for i, text in zip(index, found, strict=True):
            outputs[i] = text.strip()
    return outputs


def choose(lm: LM, items: list[GoldItem]) -> list[str]:
    """The option the model picks, per item: where the options' tokens first differ, the most likely one
    (what greedy constrained decoding, the labeller's way of choosing, picks; one forward pass per item);
    a model without that scorer compares the options' whole log-likelihoods."""
    render = getattr(lm, "render", None)
    contexts = [render(i.messages) if render else "\n".join(m["content"] for m in i.messages) for i in items]
    options = [list(i.constraint()["options"]) for i in items]
    branch = getattr(lm, "branch_loglikelihood", None)
    if branch is not None:
        rows = branch(list(zip(contexts, options, strict=True)))
    else:
        flat = iter(lm.loglikelihood([(c, o) for c, opts in zip(contexts, options, strict=True) for o in opts]))
        rows = [[next(flat) for _ in opts] for opts in options]
    return [opts[lls.index(max(lls))] for opts, lls in zip(options, rows, strict=True)]


def score(items: list[GoldItem], outputs: list[str]) -> tuple[list[dict[str, Any]], str]:
    """Per-item details (answer, reference, metrics) and the semantic method used for text answers."""
    details = [{"id": i.id, "task": i.task.id, "kind": i.kind, "output": o, "reference": i.reference,
                **item_scores(i.kind, o, i.reference, i.constraint())} for i, o in zip(items, outputs, strict=True)]
    text = [n for n, i in enumerate(items) if i.kind == "text"]
    method = ""
    if text:
        values, method = similarity([outputs[n] for n in text], [str(items[n].reference) for n in text])
        for n, value in zip(text, values, strict=True):
            details[n]["semantic"] = value
    return details, method


def results(details: list[dict[str, Any]], method: str) -> dict[str, SuiteResult]:
    """One SuiteResult per task (primary metric first, the others beside it) and one for all items."""
    out: dict[str, SuiteResult] = {}
    for task_id in dict.fromkeys(d["task"] for d in details):
        rows = [d for d in details if d["task"] == task_id]
        primary = PRIMARY.get(rows[0]["kind"], "rouge_l")
        names = [k for k in rows[0] if isinstance(rows[0][k], float) and k not in ("tp", "fp", "fn", "hallucinated",
                                                                                   "gold_nulls")]
        names += ["hallucination"] if any("hallucination" in r for r in rows) and "hallucination" not in names else []
        items = {k: [float(r[k]) for r in rows if k in r] for k in names}
        metrics = {k: mean(v) for k, v in items.items()}
        if rows[0]["kind"] == "json":
            metrics.update({f"micro_{k}": v for k, v in micro(rows).items()})
        setting = f"greedy; semantic: {method}" if rows[0]["kind"] == "text" else (
            "option log-likelihood at the first differing token" if rows[0]["kind"] == "choice" else "greedy")
        out[task_id] = SuiteResult(f"gold/{task_id}", primary, metrics, items, details=rows, setting=setting)
    overall = [float(r.items[r.primary][n]) for r in out.values() for n in range(r.n)]
    out["overall"] = SuiteResult("gold/overall", "score", {"score": mean(overall)}, {"score": overall},
                                 setting="each item's primary metric")
    return out


def evaluate_gold(lm: LM, items: list[GoldItem], max_tokens: int) -> dict[str, SuiteResult]:
    """One model on every gold item → task id (and "overall") → SuiteResult."""
    details, method = score(items, answer(lm, items, max_tokens))
    return results(details, method)


def secondary(result: SuiteResult) -> list[SuiteResult]:
    """The same result viewed through each of its other reported metrics (hallucination, valid JSON, semantic)."""
    return [replace(result, primary=name) for name in ("hallucination", "json_valid", "semantic")
            if name in result.items and result.items[name] and name != result.primary]


def calls(items: list[GoldItem]) -> int:
    """Model calls of one model on the test set: one per item (a choice is one forward pass at its branch)."""
    return len(items)

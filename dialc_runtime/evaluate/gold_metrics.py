"""One answer and its gold reference → per-item metrics by output kind; before/after intervals → a verdict in words.

* JSON (extraction): per field, a value the model states that matches the reference (after
  dialc_runtime.evaluate.normalize) is a true positive; a wrong value is a false positive and a false
  negative; a value where the reference is null is a false positive and a **hallucination**; a
  missing value where the reference has one is a false negative. Field F1 per item is
  2·tp / (2·tp + fp + fn) (1 when neither side states anything).
* choice / regex: accuracy (the normalised answer equals the reference).
* text: ROUGE-L F1 (words; CJK characters count as words) and a semantic similarity (semantic.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dialc_runtime.evaluate.normalize import fold, is_empty, same_value
from dialc_runtime.evaluate.scoring import parse_json_object, rouge_l

# the metric each output kind is judged by, and whether higher is better for each metric
PRIMARY = {"json": "field_f1", "choice": "accuracy", "regex": "accuracy", "text": "rouge_l"}
LOWER_IS_BETTER = frozenset({"hallucination"})
METRIC_NAMES = {"field_f1": "field F1", "accuracy": "accuracy", "rouge_l": "ROUGE-L", "semantic": "semantic similarity",
                "hallucination": "hallucination rate", "field_precision": "field precision",
                "field_recall": "field recall", "json_valid": "valid JSON"}


def field_counts(pred: Mapping[str, Any] | None, gold: Mapping[str, Any]) -> dict[str, int]:
    """tp, fp, fn, hallucinated (a value where gold is null) and gold_nulls over the reference's fields."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "hallucinated": 0, "gold_nulls": 0}
    for name, expected in gold.items():
        value = (pred or {}).get(name)
        stated = not is_empty(value)
        if expected is None:
            counts["gold_nulls"] += 1
            counts["fp"] += stated
            counts["hallucinated"] += stated
        elif not stated:
            counts["fn"] += 1
        elif same_value(value, expected):
            counts["tp"] += 1
        else:
            counts["fp"] += 1
            counts["fn"] += 1
    return counts


def extraction_scores(output: str, gold: Mapping[str, Any]) -> dict[str, float]:
    """Per-item field F1, precision, recall, hallucination rate (only with null gold fields) and JSON validity."""
    pred = parse_json_object(output)
    c = field_counts(pred, gold)
    claimed, expected = c["tp"] + c["fp"], c["tp"] + c["fn"]
    scores = {"field_f1": 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if claimed + expected else 1.0,
              "field_precision": c["tp"] / claimed if claimed else 1.0,
              "field_recall": c["tp"] / expected if expected else 1.0,
              "json_valid": float(pred is not None)}
    if c["gold_nulls"]:
        scores["hallucination"] = c["hallucinated"] / c["gold_nulls"]
    return {**scores, **{k: float(v) for k, v in c.items()}}


def choice_score(answer: str, gold: Any) -> dict[str, float]:
    return {"accuracy": float(fold(answer) == fold(str(gold)))}


def regex_score(output: str, pattern: str, gold: Any) -> dict[str, float]:
    """The first match of the task's pattern in the output, compared with the reference."""
    found = re.search(pattern, output)
    return {"accuracy": float(found is not None and fold(found.group(0)) == fold(str(gold)))}


def text_score(output: str, gold: str) -> dict[str, float]:
    return {"rouge_l": rouge_l(output, gold)}


def item_scores(kind: str, output: str, gold: Any, constraint: Mapping[str, Any]) -> dict[str, float]:
    """An answer's metrics by its task's output kind (the semantic similarity is added in batches)."""
    if kind == "json":
        return extraction_scores(output, gold)
    if kind == "choice":
        return choice_score(output, gold)
    if kind == "regex":
        return regex_score(output, str(constraint.get("pattern", ".*")), gold)
    return text_score(output, str(gold))


def micro(details: list[dict[str, Any]]) -> dict[str, float]:
    """Field precision / recall / F1 and hallucination rate pooled over all fields of all items."""
    total = {k: sum(float(d.get(k, 0)) for d in details) for k in ("tp", "fp", "fn", "hallucinated", "gold_nulls")}
    tp, fp, fn = total["tp"], total["fp"], total["fn"]
    out = {"precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0,
           "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0}
    if total["gold_nulls"]:
        out["hallucination"] = total["hallucinated"] / total["gold_nulls"]
    return out


def verdict(delta_ci: tuple[float, float] | list[float] | None, lower_is_better: bool = False) -> str:
    """"improved" / "dropped" when the 95% interval of the change excludes 0, else "no significant change"."""
    if not delta_ci:
        return "no significant change"
    low, high = delta_ci
    if low > 0:
        return "dropped" if lower_is_better else "improved"
    if high < 0:
        return "improved" if lower_is_better else "dropped"
    return "no significant change"

"""Keep rules, weighted aggregate, gates, top_k, and `expect` data tests over filtered records."""

from __future__ import annotations

from typing import Any

import pytest

from dialc_runtime.quality.aggregate import aggregate, apply_top_k, decide, parse_dimensions
from dialc_runtime.quality.expects import check_all, metric, metric_scope, source_form
from dialc_runtime.quality.keep import RuleError, evaluate, refs

DIMS = parse_dimensions(
    {
        "valid": {"gate": True},
        "grounded": {"weight": 1},
        "helpful": {"weight": 2},
        "novel": {"gate": True},
    }
)
AT_LEAST = {"op": ">=", "left": {"ref": "score"}, "right": 0.6}


def v(score: float | None, passed: bool | None = True, detail: str = "") -> dict[str, Any]:
    return {"score": score, "passed": passed, "detail": detail}


def verdicts(**overrides: dict[str, Any]) -> dict[str, dict[str, Any]]:
    base = {"valid": v(1.0), "grounded": v(0.9), "helpful": v(0.75), "novel": v(1.0)}
    return {**base, **overrides}


RECORD = {"id": "r1", "category": "extraction", "scenario": "rental", "ok": True}


def test_aggregate_is_weighted_over_non_gates_with_scores() -> None:
    assert aggregate(verdicts(), DIMS) == pytest.approx((0.9 + 2 * 0.75) / 3)
    # a failed judge (null) is left out, not counted as zero
    assert aggregate(verdicts(helpful=v(None, None)), DIMS) == 0.9
    assert aggregate(verdicts(helpful=v(None, None), grounded=v(None, True)), DIMS) is None


def test_keep_rule_reasons() -> None:
    assert evaluate(AT_LEAST, {"score": 0.42}).reason == "score 0.42 < 0.6"
    assert evaluate(AT_LEAST, {"score": 0.7}).ok
    rule = {"op": "and", "args": [AT_LEAST, {"op": ">", "left": {"ref": "helpful"}, "right": 0.5}]}
    outcome = evaluate(rule, {"score": 0.9, "helpful": 0.25})
    assert (outcome.ok, outcome.reason) == (False, "helpful 0.25 <= 0.5")
    either = {"op": "or", "left": AT_LEAST, "right": {"op": "==", "left": {"ref": "category"},
                                                       "right": "qa"}}  # fmt: skip
    assert evaluate(either, {"score": 0.1, "category": "qa"}).ok
    miss = evaluate(either, {"score": 0.1, "category": "x"})
    assert miss.reason == "score 0.1 < 0.6 and category 'x' != 'qa'"
    assert not evaluate({"op": "not", "operand": AT_LEAST}, {"score": 0.9}).ok
    assert evaluate(AT_LEAST, {"score": None}).reason == "score has no value"
    assert refs(rule) == {"score", "helpful"}


def test_bad_rules_raise() -> None:
    with pytest.raises(RuleError, match="unknown name 'scroe'"):
        evaluate({"op": ">=", "left": {"ref": "scroe"}, "right": 1}, {"score": 1})
    with pytest.raises(RuleError, match="unknown operator"):
        evaluate({"op": "xor", "args": []}, {})


def test_gates_are_hard_fails_whatever_the_score() -> None:
    failed = verdicts(valid=v(0.0, False, "$.bedrooms: 11 is above the maximum 10"))
    decision = decide(RECORD, failed, DIMS, AT_LEAST)
    assert not decision.kept
    assert decision.reason == "gate valid failed: $.bedrooms: 11 is above the maximum 10"
    assert decision.cause == "gate:valid"
    unassessed = decide(RECORD, verdicts(novel=v(None, None, "judge error")), DIMS, AT_LEAST)
    assert unassessed.reason == "gate novel not assessed: judge error"
    missing = decide(RECORD, {k: x for k, x in verdicts().items() if k != "novel"}, DIMS)
    assert missing.reason == "gate novel not assessed: no score record"


def test_keep_decides_after_the_gates() -> None:
    assert decide(RECORD, verdicts(), DIMS, AT_LEAST).kept
    low = decide(RECORD, verdicts(grounded=v(0.1), helpful=v(0.5)), DIMS, AT_LEAST)
    assert (low.kept, low.reason, low.cause) == (False, "score 0.367 < 0.6", "keep")
    assert decide(RECORD, verdicts(grounded=v(0.1)), DIMS, None).kept  # no rule: gates only


def test_failed_labels_are_rejected_first() -> None:
    record = {**RECORD, "ok": False, "error": "invalid JSON after 3 attempts"}
    decision = decide(record, verdicts(), DIMS, AT_LEAST)
    assert (decision.kept, decision.reason) == (
        False,
        "label failed: invalid JSON after 3 attempts",
    )


def test_top_k_per_category() -> None:
    records = [{"id": f"r{i}", "category": c} for i, c in enumerate("aaab")]
    scores = [0.7, 0.9, 0.8, 0.1]
    decisions = [
        decide({**r, "ok": True}, verdicts(helpful=v(s), grounded=v(s)), DIMS)
        for r, s in zip(records, scores, strict=True)
    ]
    ranked = apply_top_k(records, decisions, 2)
    assert [d.kept for d in ranked] == [False, True, True, True]
    assert ranked[0].reason == "not in top 2 of category 'a' (rank 3)"
    best_only = apply_top_k(records, decisions, {"k": 1, "by": "category"})
    assert [d.kept for d in best_only] == [False, True, False, True]
    assert apply_top_k(records, decisions, None) == decisions
    assert apply_top_k(records, decisions, 0) == decisions  # the compiler's "no limit"


def rows() -> list[dict[str, Any]]:
    """Ten filtered records: 6 kept (4 rental, 2 purchase), one duplicate."""
    out = []
    for i in range(10):
        kept = i < 6
        scenario = "rental" if i % 2 == 0 or i == 1 else "purchase"
        quality: dict[str, dict[str, Any]] = {
            "helpful": {"score": 0.5 + i / 20, "passed": i != 0},
            "novel": {"passed": True},
        }
        if i == 9:
            quality["novel"] = {"passed": False, "duplicate_of": "r0"}
        out.append({"id": f"r{i}", "scenario": scenario, "category": "qa", "answer": f"answer {i}",
                    "kept": kept, "aggregate": 0.5 + i / 20, "quality": quality,
                    "scores": {"helpful": quality["helpful"]["score"]}})  # fmt: skip
    return out


def test_metrics() -> None:
    data = rows()
    assert metric("kept_rate", data) == 0.6
    assert metric("duplicate_rate", data) == 0.1
    assert metric("mean:helpful", data) == pytest.approx(0.625)  # over kept records
    assert metric_scope("mean:helpful", data) == (6, "over the 6 kept records")
    assert metric_scope("kept_rate", data) == (10, "over all 10 records")
    assert source_form("mean:helpful") == "mean(helpful)" and source_form("kept_rate") == "kept_rate"
    assert metric("pass_rate:helpful", data) == pytest.approx(5 / 6, abs=1e-4)
    assert metric("mean:score", data) == pytest.approx(0.625)
    p = metric("balance_p:scenario", data)
    assert p is not None and 0.0 < p <= 1.0
    skewed = [{**r, "kept": r["scenario"] == "rental"} for r in data]
    assert metric("balance_p:scenario", skewed) < 0.05  # type: ignore[operator]
    with pytest.raises(KeyError):
        metric("happiness", data)


def test_expectations_name_their_spec_location() -> None:
    expects = [
        {"metric": "kept_rate", "op": ">=", "value": 0.5, "span": "specs/x.dial:30:3"},
        {"metric": "mean:helpful", "op": ">=", "value": 0.8, "span": "specs/x.dial:31:3"},
        {"metric": "vibes", "op": ">=", "value": 1, "span": "specs/x.dial:32:3"},
    ]
    ok, low, unknown = check_all(expects, rows())
    assert ok["ok"] and ok["actual"] == 0.6 and ok["message"] == ""
    assert not low["ok"]
    assert low["message"] == (  # issue 9: the source syntax, and what the figure is computed over
        "specs/x.dial:31:3: expect mean(helpful) >= 0.8 failed: mean(helpful) is 0.625 over the 6 kept records"
    )
    assert low["expect"] == "expect mean(helpful) >= 0.8" and low["n"] == 6
    assert not unknown["ok"] and "unknown metric 'vibes'" in unknown["message"]
    nothing_kept = [{**r, "kept": False} for r in rows()]
    (empty,) = check_all([{"metric": "mean:helpful", "op": ">=", "value": 0.1}], nothing_kept)
    assert not empty["ok"] and "has no value" in empty["message"]


def test_diversity_of_labels_without_words_uses_the_raw_answer() -> None:
    data = [
        {"id": "a", "kept": True, "value": {"n": 1}, "answer": '{"n": 1}'},
        {"id": "b", "kept": True, "value": {"n": 2}, "answer": '{"n": 2}'},
    ]
    assert metric("distinct_1", data) == 0.75  # n, 1, n, 2

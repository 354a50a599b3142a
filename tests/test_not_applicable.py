"""A dimension that does not apply to a record (grounding a choice label) → skipped, the same way everywhere:
in the keep rule, gates, the aggregate and `expect`; and filtering that wipes out a category is said out loud."""

from __future__ import annotations

from typing import Any

from runtime_fakes import MemoryContext

from dialc.frontend import run_frontend
from dialc_runtime.quality.aggregate import Dimension, decide
from dialc_runtime.quality.expects import dimension_summary, metric
from dialc_runtime.quality.keep import NOT_APPLICABLE, evaluate
from dialc_runtime.steps import filter as filter_step
from dialc_runtime.steps import score as score_step

NA = {"score": None, "passed": True, "detail": "n/a: choice output"}
FAILED = {"score": None, "passed": None, "detail": "judge error"}
DIMS = {"valid": Dimension("valid", gate=True, kind="rule"), "helpful": Dimension("helpful", 2.0, kind="judge"),
        "grounded": Dimension("grounded", 1.0, kind="grounding")}
RULE = {"op": "and", "left": {"op": ">=", "left": {"ref": "score"}, "right": 0.4},
        "right": {"op": ">=", "left": {"ref": "grounded"}, "right": 0.2}}


def verdicts(grounded: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {"valid": {"score": 1.0, "passed": True}, "helpful": {"score": 0.75, "passed": True},
            "grounded": grounded}


def test_a_condition_on_an_inapplicable_dimension_is_skipped() -> None:
    decision = decide({"ok": True}, verdicts(NA), DIMS, RULE)
    assert decision.kept and decision.aggregate == 0.75  # the aggregate leaves grounded out
    assert decision.reason == "score 0.75 >= 0.4 and grounded n/a"
    grounded = decide({"ok": True}, verdicts({"score": 0.1, "passed": False}), DIMS, RULE)
    assert not grounded.kept and grounded.reason == "grounded 0.1 < 0.2"
    failed = decide({"ok": True}, verdicts(FAILED), DIMS, RULE)  # could not be assessed: not n/a
    assert not failed.kept and failed.reason == "grounded has no value"


def test_not_and_or_skip_it_too() -> None:
    env = {"grounded": NOT_APPLICABLE, "score": 0.3}
    negated = {"op": "not", "operand": {"op": "<", "left": {"ref": "grounded"}, "right": 0.2}}
    assert evaluate(negated, env).ok
    either = {"op": "or", "left": {"op": ">=", "left": {"ref": "score"}, "right": 0.4},
              "right": {"op": ">=", "left": {"ref": "grounded"}, "right": 0.2}}
    assert not evaluate(either, env).ok  # score decides alone
    alone = {"op": ">=", "left": {"ref": "grounded"}, "right": 0.2}
    assert evaluate(alone, env).ok and not evaluate(alone, env).applies


def test_an_inapplicable_gate_passes_and_expects_leave_it_out() -> None:
    dims = {**DIMS, "grounded": Dimension("grounded", gate=True, kind="grounding")}
    assert decide({"ok": True}, verdicts(NA), dims, None).kept
    rows = [{"kept": True, "scores": {"grounded": None}, "quality": {"grounded": NA}},
            {"kept": True, "scores": {"grounded": 0.0}, "quality": {"grounded": {"score": 0.0, "passed": False}}}]
    assert metric("pass_rate:grounded", rows) == 0.0  # over the one record it applies to
    assert metric("mean:grounded", rows) == 0.0
    summary = dimension_summary(rows, "grounded")
    assert summary["pass_rate"] == 0.0 and summary["not_applicable"] == 1


DIALOGUE = {"id": "d1", "scenario": "rental", "turns": [{"role": "customer", "text": "I want to rent a flat."}]}


def label(i: int, kind: str) -> dict[str, Any]:
    output = {"kind": "choice", "options": ["ready", "browsing"]} if kind == "choice" else {"kind": "text",
                                                                                           "max_chars": 200}
    answer = "ready" if kind == "choice" else "The weather on Mars is cold."
    return {"id": f"p{i}", "dialogue_id": "d1", "scenario": "rental", "task_id": kind, "category":
            "classification" if kind == "choice" else "summary", "output": output, "answer": answer,
            "value": answer, "ok": True, "messages": [{"role": "user", "content": "q"}]}


def test_filtering_keeps_classification_and_warns_when_a_category_is_wiped_out() -> None:
    labels = [label(i, "choice" if i % 2 else "text") for i in range(8)]
    inputs: dict[str, list[Any]] = {"label.labels": labels}
    for dim in ({"name": "grounded", "kind": "grounding", "min": 0.3}, {"name": "valid", "kind": "rule",
                                                                           "check": "schema"}):
        ctx = MemoryContext(f"score.{dim['name']}", {"dimension": dim, "seed": 1},
                            {"label.labels": labels, "ingest.dialogues": [DIALOGUE]})
        score_step.run(ctx)  # type: ignore[arg-type]
        inputs[f"score.{dim['name']}"] = list(ctx.emitted.values())
    params = {"dimensions": {"grounded": {"kind": "grounding"}, "valid": {"kind": "rule"}},
              "keep": {"op": ">=", "left": {"ref": "grounded"}, "right": 0.2}}
    ctx = MemoryContext("filter.quality", params, inputs)
    out = filter_step.run(ctx)  # type: ignore[arg-type]
    kept = {r["category"] for r in ctx.emitted.values() if r["kept"]}
    assert kept == {"classification"}  # grounding does not apply to choice labels: all 4 kept
    assert out.metrics["wiped_out"] == [{"key": "category", "value": "summary", "candidates": 4, "kept": 0,
                                         "causes": {"keep": 4}}]
    assert "filtering removed all 4 records of category summary (keep: 4)" in ctx.warnings, ctx.warnings


def test_validate_warns_where_a_keep_rule_or_gate_cannot_apply(tmp_path: Any) -> None:
    spec = tmp_path / "x.dial"
    spec.write_text("""
model small { path = "builtin:smollm2-135m-instruct" }
source dialogues { path = "d.jsonl"  roles = [agent, customer] }
task reply { category = reply  instruction = "Reply."  output = text(max = 200) }
task intent { category = intent  instruction = "Intent?"  output = choice([buy, rent]) }
sample prompts { from = dialogues * tasks  count = 2 }
label labels { from = prompts  model = small }
quality {
  dimension grounded grounding { min = 0.3  gate = true }
  dimension helpful judge { model = small  rubric = "Useful?" }
  keep when score >= 0.4 and grounded >= 0.2
}
""", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text("", encoding="utf-8")
    diags = run_frontend(spec, check_files=False).diags
    found = [(d.code, d.span.line if d.span else 0, d.message) for d in diags.items]
    codes = [(code, line) for code, line, _ in found if code == "inapplicable-dimension"]
    assert codes == [("inapplicable-dimension", 9), ("inapplicable-dimension", 11)], found
    message = next(m for c, line, m in found if c == "inapplicable-dimension" and line == 11)
    assert "grounding does not apply to choice" in message and "task intent" in message


def test_the_support_specs_old_keep_rule_is_warned_about_and_the_shipped_specs_are_clean(tmp_path: Any) -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    text = (root / "specs" / "support.dial").read_text(encoding="utf-8")
    old = tmp_path / "support.dial"
    old.write_text(text.replace("keep when score >= 0.45\n", "keep when score >= 0.45 and grounded >= 0.2\n"),
                   encoding="utf-8")
    diags = run_frontend(old, check_files=False).diags
    assert [d.code for d in diags.items] == ["inapplicable-dimension"]
    assert "satisfaction (regex)" in diags.items[0].message and "triage (choice)" in diags.items[0].message
    for spec in ("support.dial", "realestate.dial"):
        assert not run_frontend(root / "specs" / spec).diags.items


def test_the_language_rule_reads_iso_codes_and_skips_fixed_outputs() -> None:
    from dialc_runtime.quality.rules import rule_language

    answer = {"answer": "好的，我们周五去看房。", "output": {"kind": "text", "max_chars": 100}}
    assert rule_language({**answer, "expression": {"language": "zh"}}, {}).passed is True
    named = rule_language({**answer, "expression": {"language": "Chinese"}}, {})
    assert named.score is None and named.passed is None and "ISO 639-1" in named.detail  # loud, not 0
    choice = {"answer": "ready", "output": {"kind": "choice", "options": ["ready"]}, "expression": {"language": "zh"}}
    assert rule_language(choice, {}).detail == "n/a: choice output"

"""dialc_runtime.report.page on small runs (real score/filter steps, fake model steps): sections, numbers,
escaping, valid SVG, and graceful pages for failed, blocked and partial runs."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from runtime_fakes import make_plan

from dialc.plan import ScoreParams
from dialc_runtime.engine.context import StepContext, StepOutput
from dialc_runtime.engine.executor import execute
from dialc_runtime.engine.layout import RunLayout
from dialc_runtime.engine.registry import DictRegistry
from dialc_runtime.errors import StepFailed
from dialc_runtime.evaluate.scoring import SuiteResult, check_retention, compare_row, format_table
from dialc_runtime.report.page import summary_table, write_report
from dialc_runtime.steps import evaluate as evaluate_step
from dialc_runtime.steps import filter as filter_step
from dialc_runtime.steps import score as score_step
from dialc_runtime.steps.label import _metrics as label_metrics

EVIL = '<script>alert("x")</script> & <b>bold</b>'
SCENARIOS = ["rental", "purchase"]
CATEGORIES = ["summarization", "analysis"]


def _sample(ctx: StepContext) -> StepOutput:
    n = int(ctx.params.get("count"))
    for i in range(n):
        ctx.emit(f"{i:06d}", {
            "id": f"prompts-{i:06d}", "dialogue_id": f"d{i % 4}",
            "scenario": SCENARIOS[i % 2], "category": CATEGORIES[(i // 2) % 2],
            "task_id": "t", "instruction": f"Summarise dialogue {i}.",
            "expression": {"tone": "formal"}, "output": {"kind": "text", "max_chars": 400},
            "messages": [{"role": "user", "content": f"prompt {i}"}],
        })  # fmt: skip
    balance = {
        "scenario": {"declared": {"purchase": 0.4, "rental": 0.6},
                     "achieved": {"purchase": 0.5, "rental": 0.5}, "p_value": 0.5271},
        "category": {"declared": {"analysis": 0.5, "summarization": 0.5},
                     "achieved": {"analysis": 0.5, "summarization": 0.5}, "p_value": 1.0},
    }  # fmt: skip
    return StepOutput(metrics={"prompts": n, "balance": balance})


def _answer(i: int) -> str:
    if i == 0:  # the worst by the judge: shown among the examples
        return EVIL
    if i == 5:
        return "The customer wants a flat near the river."  # copied by record 6
    if i == 6:
        return "The customer wants a flat near the river."
    return f"Record {i}: customer {i} asks about item {i * 7} and viewing slot {i * 13} today."


def _label(ctx: StepContext) -> StepOutput:
    out = []
    for key, r in ctx.items(ctx.step.input_ids[0]):
        i = int(key)
        ok = i != 7
        rec = {**r, "answer": _answer(i) if ok else "", "value": None, "ok": ok,
               "error": None if ok else "output is not valid: too long", "attempts": 2 if i == 2
               else 1}  # fmt: skip
        ctx.emit(key, rec)
        out.append(rec)
    return StepOutput(metrics=label_metrics(out))


def _score(ctx: StepContext) -> StepOutput:
    """The real score step, except judges: their verdict is a fixed function of the record."""
    if isinstance(ctx.params, ScoreParams):  # complete params: rule and dedup dimensions
        return score_step.run(ctx)
    records = []
    for r in ctx.records(ctx.step.input_ids[0]):
        i = int(r["id"].rsplit("-", 1)[1])
        cost = {"model_calls": 5, "prompt_tokens": 100, "completion_tokens": 0}
        verdict = {
            "id": r["id"],
            "score": round(i / 10, 4),
            "passed": i >= 3,
            "detail": f"raw {1 + 4 * i / 10:.1f}",
            "raw": 1 + 4 * i / 10,
            "cost": cost,
        }
        if not r["ok"]:
            verdict = {"id": r["id"], "score": None, "passed": None,
                       "detail": "skipped: label failed", "skipped": True}  # fmt: skip
        ctx.emit(r["id"], verdict)
        records.append(verdict)
    ctx.account(model_calls=35, prompt_tokens=700)
    return StepOutput(metrics={**score_step.summarise(records), "seconds": 1.5})


def _finetune(ctx: StepContext) -> StepOutput:
    summary = {"records": 5, "held_out": 1, "replayed": 0, "steps": 2, "final_loss": 1.25,
               "tokens_per_s": 99.0, "adapter": "adapter"}  # fmt: skip
    ctx.emit("result", summary)
    return StepOutput(metrics=summary)


def _evaluate(ctx: StepContext) -> StepOutput:
    """Real before/after rows from fixed per-item scores; `after_general` moves the probe suite."""
    after_general = float(ctx.params.get("after_general", 0.5))
    general = [1.0, 0.0] * 10
    before = {
        "probe": SuiteResult("probe", "acc", {"acc": 0.5}, {"acc": general}),
        "domain": SuiteResult("domain", "score", {"score": 0.2}, {"score": [0.2] * 4}),
    }
    moved = [1.0] * round(20 * after_general) + [0.0] * (20 - round(20 * after_general))
    after = {
        "probe": SuiteResult("probe", "acc", {"acc": after_general}, {"acc": moved}),
        "domain": SuiteResult("domain", "score", {"score": 0.6}, {"score": [0.6] * 4}),
    }
    ok, rows = check_retention({"probe": before["probe"]}, {"probe": after["probe"]}, 5.0)
    rows.append(compare_row("domain", before["domain"], after["domain"]))
    table = format_table(rows)
    evaluate_step.write_report(ctx, {"before": before, "after": after}, rows, table)
    if not ok:
        raise StepFailed(f"retention gate failed (max_drop 5.0 points):\n{table}")
    return StepOutput(metrics=evaluate_step.metrics(rows, 4), message=table)


def registry() -> DictRegistry:
    kinds = {"sample": _sample, "label": _label, "score": _score, "filter": filter_step.run,
             "finetune": _finetune, "evaluate": _evaluate}  # fmt: skip
    return DictRegistry({k: SimpleNamespace(VERSION="1", run=fn) for k, fn in kinds.items()})


DIMS = {
    "sane_len": {"kind": "rule", "check": "length", "min": 3, "max": 40, "name": "sane_len"},
    "helpful": {"kind": "judge", "scale": [1, 5], "name": "helpful"},
    "novel": {"kind": "dedup", "method": "minhash", "threshold": 0.8, "name": "novel"},
}
GATES = {"sane_len": {"weight": 1.0, "kind": "rule"}, "helpful": {"weight": 2.0, "kind": "judge"},
         "novel": {"gate": True, "kind": "dedup"}}  # fmt: skip


def pipeline(expect: float = 0.2, after_general: float = 0.5, extra: tuple[Any, ...] = ()) -> Any:
    scores = [f"score.{n}" for n in DIMS]
    filt = {"dimensions": GATES, "keep": {"left": {"ref": "score"}, "op": ">=", "right": 0.3},
            "expects": [{"metric": "kept_rate", "op": ">=", "value": expect}]}
    plan = make_plan([
        ("sample.prompts", {"count": 8}, []),
        ("label.labels", {}, ["sample.prompts"]),
        *[(s, {"dimension": DIMS[s[6:]], "seed": 1}, ["label.labels"]) for s in scores],
        ("filter.quality", filt, ["label.labels", *scores]),
        ("finetune.domain", {}, ["filter.quality"]),
        ("evaluate.after", {"after_general": after_general}, ["finetune.domain", "filter.quality"]),
        *extra,
    ])  # fmt: skip
    where = {"expects": ["specs/fake.dial:30:3"]}  # where the spec declared the expect (not in the key)
    plan.steps = [s.model_copy(update={"locations": where}) if s.kind == "filter" else s for s in plan.steps]
    return plan


def run(tmp: Path, broken: bool = False, **kw: Any) -> str:
    reg = registry()
    if broken:
        reg.modules["label"] = SimpleNamespace(VERSION="1", run=_broken)
    execute(pipeline(**kw), tmp, registry=reg, quiet=True)
    path = write_report(tmp)
    assert path == RunLayout(tmp).report
    return path.read_text(encoding="utf-8")


def _broken(ctx: StepContext) -> StepOutput:
    """Labels three records, then fails (a crash mid-step keeps what was written)."""
    for key, r in list(ctx.items(ctx.step.input_ids[0]))[:3]:
        ctx.emit(key, {**r, "answer": "x", "value": None, "ok": key != "000001", "attempts": 1,
                       "error": None if key != "000001" else "truncated JSON"})  # fmt: skip
    raise StepFailed("the labelling model is unreachable")


def section(html: str, anchor: str) -> str:
    found = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert found, f"no section {anchor}"
    return found.group(1)


def check_svgs(html: str) -> int:
    svgs = re.findall(r"<svg .*?</svg>", html, re.S)
    for svg in svgs:
        root = ET.fromstring(svg)  # well-formed XML
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return len(svgs)


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("full")
    return tmp, run(tmp)


def test_full_report_has_every_section(full: tuple[Path, str]) -> None:
    _, html = full
    for anchor in ("summary", "overview", "labels", "balance", "dimensions", "filter",
                   "diversity", "cost", "examples", "expectations", "evaluation"):  # fmt: skip
        assert "not run" not in section(html, anchor), anchor
    assert "<script" not in html and "http" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # offline: no scripts, no external resources


def test_numbers_reach_the_page(full: tuple[Path, str]) -> None:
    _, html = full
    labels = section(html, "labels")
    assert "87.5%" in labels and "12.5%" in labels  # 7/8 valid, 1/8 retried
    assert "output is not valid: too long" in labels
    balance = section(html, "balance")
    assert "0.5271" in balance and "60.0%" in balance and "consistent with" in balance
    dims = section(html, "dimensions")
    assert "helpful (judge · weight 2.0)" in dims and "novel (dedup · gate)" in dims
    cost = section(html, "cost")
    assert "35" in cost and "700" in cost  # judge: 7 records × 5 calls, 7 × 100 tokens
    expects = section(html, "expectations")
    assert "expect kept_rate &gt;= 0.2" in expects and "specs/fake.dial:30:3" in expects
    assert "pass" in expects
    kept = section(html, "filter")
    assert "gate:novel" in kept and "label" in kept


def test_evaluation_table(full: tuple[Path, str]) -> None:
    _, html = full
    ev = section(html, "evaluation")
    assert "passed" in ev and "probe" in ev and "domain" in ev and "not gated" in ev
    assert "20.0" in ev and "60.0" in ev and "+40.0" in ev  # domain before/after/change
    assert re.search(r"\[[-+]?\d+\.\d, [-+]?\d+\.\d\]", ev)  # confidence intervals
    assert "final loss" in ev and "1.25" in ev


def test_answers_are_escaped(full: tuple[Path, str]) -> None:
    _, html = full
    assert EVIL not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold" in html


def test_svg_charts_are_valid_xml(full: tuple[Path, str]) -> None:
    _, html = full
    # a histogram per dimension + the aggregate, a bar chart per balance key
    assert check_svgs(html) >= 3 + 1 + 2


def test_examples_show_best_and_worst(full: tuple[Path, str]) -> None:
    _, html = full
    ex = section(html, "examples")
    assert "best · prompts-000006 · score 0.6" in ex
    assert "worst · prompts-000000 · score 0.0" in ex


def test_summary_table(full: tuple[Path, str]) -> None:
    tmp, _ = full
    console = Console(file=io.StringIO(), width=140)
    console.print(summary_table(tmp))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    for expected in ("kept / rejected", "87.5%", "helpful: mean kept / all, pass rate", "retention gate",
                     "passed", "expectations passed", "1 / 1"):  # fmt: skip
        assert expected in text, expected


def test_the_summary_mean_is_the_expect_mean(full: tuple[Path, str]) -> None:
    """Issue 9: the summary's mean(helpful) was over all records while `expect mean(helpful)` used the kept."""
    from dialc_runtime.quality.expects import metric
    from dialc_runtime.report.data import open_view
    from dialc_runtime.report.page import key_numbers

    tmp, html = full
    with open_view(tmp) as view:
        assert view is not None
        rows = view.dicts(view.step("filter.quality"))
        figures = dict(key_numbers(view))
    kept, every = figures["helpful: mean kept / all, pass rate"].split(",")[0].split(" / ")
    assert float(kept) == metric("mean:helpful", rows) and float(every) != float(kept)
    assert "mean(helpful), kept records" in section(html, "dimensions")
    assert "computed over the kept records" in section(html, "expectations")


def test_failed_step_degrades_every_section(tmp_path: Path) -> None:
    html = run(tmp_path, broken=True)
    assert "the labelling model is unreachable" in section(html, "overview")
    labels = section(html, "labels")  # what the failed step wrote is still shown, as partial
    assert "partial (failed): from the 3 records" in labels and "66.7%" in labels
    assert "truncated JSON" in labels
    for anchor in ("dimensions", "filter", "diversity", "cost", "examples",
                   "expectations", "evaluation"):  # fmt: skip
        assert "not run" in section(html, anchor), anchor
    assert "consistent with" in section(html, "balance")  # the sample step did run
    check_svgs(html)
    assert "failed" in section(html, "summary")


def test_blocked_filter_and_failed_retention(tmp_path: Path) -> None:
    html = run(tmp_path, expect=0.99)
    expects = section(html, "expectations")
    assert "FAIL" in expects and "kept_rate is" in expects
    assert "not run" in section(html, "evaluation")  # blocked upstream: nothing evaluated
    assert "blocked" in section(html, "overview")

    html = run(tmp_path / "gate", after_general=0.2)
    ev = section(html, "evaluation")
    assert "FAILED" in ev and "FAIL" in ev and "-30.0" in ev


def test_no_results_and_unreadable_results(tmp_path: Path) -> None:
    assert write_report(tmp_path) is None
    RunLayout(tmp_path).results.write_text("{not json", encoding="utf-8")
    page = write_report(tmp_path)
    assert page is not None and "Error" in page.read_text(encoding="utf-8")
    RunLayout(tmp_path).results.write_text(json.dumps({"format": 99}), encoding="utf-8")
    assert "format 99" in (write_report(tmp_path) or tmp_path).read_text(encoding="utf-8")
    console = Console(file=io.StringIO(), width=120)
    console.print(summary_table(tmp_path))
    assert "unreadable" in console.file.getvalue()  # type: ignore[attr-defined]


def test_selected_part_of_a_run(tmp_path: Path) -> None:
    """Only some steps selected: the rest say "not run" (the store may hold them from before)."""
    reg = registry()
    execute(pipeline(), tmp_path, registry=reg, quiet=True, select=["+label.labels"])
    html = write_report(tmp_path).read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "87.5%" in section(html, "labels")
    assert "not run (no filter step in this run)" in section(html, "filter")
    assert "not run" in section(html, "evaluation")


def test_a_cached_rerun_shows_what_the_data_cost_when_made(tmp_path: Path) -> None:
    """Issue 9: after a cached re-run the report said 0 s, 0 model calls and 0 tokens."""
    from dialc_runtime.engine.results import load_results
    from dialc_runtime.report.data import open_view
    from dialc_runtime.report.page import key_numbers

    run(tmp_path)
    html = run(tmp_path)  # everything cached
    results = load_results(RunLayout(tmp_path).results)
    assert {s.status for s in results.steps} == {"cached"}
    judge = results.step("score.helpful")
    assert judge.model_calls == 0 and judge.made["model_calls"] == 35 and judge.made["prompt_tokens"] == 700
    totals = results.totals()
    assert totals["model_calls"] == 0 and totals["made"]["model_calls"] == 35
    assert totals["made"]["tokens"] == 700 and totals["made"]["seconds"] >= 0
    with open_view(tmp_path) as view:
        assert view is not None
        figures = dict(key_numbers(view))
    assert figures["model calls: this run / the data as made"] == "0 / 35"
    assert figures["tokens: this run / the data as made"] == "0 / 700"
    overview = section(html, "overview")
    assert "the data as made" in overview and "35" in overview


def test_every_before_after_figure_has_n_and_ci_and_small_ones_are_flagged(full: tuple[Path, str]) -> None:
    """Issue 9: the summary's before → after figures had no n or interval; 4 items carried no warning."""
    from dialc_runtime.report.data import open_view
    from dialc_runtime.report.page import key_numbers

    tmp, html = full
    with open_view(tmp) as view:
        assert view is not None
        figures = dict(key_numbers(view))
    domain = figures["domain (domain): before → after (points)"]
    assert domain.startswith("20 → 60 (n = 4, change +40.0, 95% CI +40.0 … +40.0") and "too few items" in domain
    assert "n = 20" in figures["probe (general): before → after (points)"]
    ev = section(html, "evaluation")
    assert "domain: n = 4 items, fewer than 30" in ev and "too few" in ev


def test_each_judge_shows_its_spread_and_agreement(full: tuple[Path, str]) -> None:
    _, html = full
    dims = section(html, "dimensions")
    assert "spread: std · min–max · distinct" in dims and "agreement with the others (Spearman ρ)" in dims
    assert "cannot separate records" not in dims  # the fake judge spreads 0.0 … 0.6


def _study(ctx: StepContext) -> StepOutput:
    """Three tiers as the real study step records them (scores in points, n and CI per suite)."""
    from dialc_runtime.steps.study import study_metrics, study_warnings

    rows = []
    for tier, (quality, score) in enumerate([(0.8, 40.0), (0.5, 30.0), (0.2, 10.0)], start=1):
        row = {"tier": tier, "records": 4, "mean_quality": quality, "min_quality": quality - 0.1,
               "max_quality": quality + 0.1, "scores": {"domain": score, "probe": 50.0},
               "n": {"domain": 4, "probe": 60}, "ci": {"domain": [score - 9, score + 9], "probe": [40.0, 60.0]}}
        ctx.emit(f"tier-{tier}", row)
        rows.append(row)
    metrics = study_metrics(rows)
    metrics["warnings"] = study_warnings(rows)
    return StepOutput(metrics=metrics)


def test_the_study_has_its_section(tmp_path: Path) -> None:
    """Issue 9: the quality ⇄ performance study left no trace in the report."""
    reg = registry()
    reg.modules["study"] = SimpleNamespace(VERSION="1", run=_study)
    execute(pipeline(extra=(("study.tiers", {}, ["filter.quality"]),)), tmp_path, registry=reg, quiet=True)
    html = write_report(tmp_path).read_text(encoding="utf-8")  # type: ignore[union-attr]
    part = section(html, "study")
    for expected in ("tier", "records", "quality", "0.8", "40.0 [31.0, 49.0]", "n = 4", "n = 60",
                     "Spearman", "+1.00", "3 tiers", "fewer than 20 records", "domain: n = 4 items",
                     "answer key", "no significant relation (p = 0.33; 3 tiers cannot show one at the 5% level)"):
        assert expected in part, expected
    console = Console(file=io.StringIO(), width=160)
    console.print(summary_table(tmp_path))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "study: quality ⇄ domain (Spearman ρ; vs answer key)" in shown and "no significant relation" in shown


def test_study_verdict_says_whether_the_tiers_can_carry_a_conclusion() -> None:
    from dialc_runtime.report.sections import study_reference, study_verdict

    rising = [(q, 10.0 * q) for q in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]  # 6 tiers, perfectly ordered: p = 2/720
    assert study_verdict(rising) == "better data scored higher (p = 0.0028)"
    assert study_verdict([(q, -s) for q, s in rising]) == "better data scored lower (p = 0.0028)"
    assert study_verdict([(0.1, 5.0), (0.2, 5.0), (0.3, 5.0)]).startswith("undefined")
    assert study_verdict([(0.1, 1.0), (0.2, 3.0), (0.3, 2.0), (0.4, 4.0)]).startswith("no significant relation")
    assert study_reference("labeller_agreement").startswith("the labeller")
    assert study_reference("gold/x") == "gold references"


def test_the_streamed_tally_picks_the_examples_and_figures_a_full_sort_would() -> None:
    """The report keeps counts and a few records per dimension, not every verdict (issue 11)."""
    import random
    import statistics

    from dialc_runtime.quality.spread import spread, spread_counts
    from dialc_runtime.report.quality import CHUNK, EXAMPLES, tally_of

    rng = random.Random(3)
    verdicts = [{"id": f"r{rng.randrange(10**6):06d}", "score": rng.choice([0.0, 0.25, 0.5, 0.75, 1.0, None]),
                 "passed": rng.random() < 0.5} for _ in range(3 * CHUNK + 7)]  # fmt: skip
    t = tally_of(verdicts)
    scored = [v for v in verdicts if isinstance(v["score"], float)]
    ranked = sorted(scored, key=lambda v: (-float(v["score"]), str(v["id"])))
    assert t.best == ranked[:EXAMPLES] and t.last == ranked[::-1][: 2 * EXAMPLES]
    scores = [float(v["score"]) for v in scored]
    assert t.scored == len(scores) and t.records == len(verdicts) and t.total == sum(scores)
    assert spread_counts(t.scores) == spread(scores)
    assert statistics.pstdev(t.scores.elements()) == statistics.pstdev(scores)

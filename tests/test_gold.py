"""Gold test sets: value normalisation, metrics against references, verdicts, leak and reference checks, items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dialc.plan import FieldMapping, GoldSet, PromptFormat, TaskSpec
from dialc.references import GoldTask, check_answer, check_references
from dialc.testsets import near_copies, shingles
from dialc_runtime.evaluate.gold import GoldItem, choose, load_items, results, sample, score, token_budget
from dialc_runtime.evaluate.gold_metrics import extraction_scores, field_counts, item_scores, micro, verdict
from dialc_runtime.evaluate.normalize import chinese_number, fold, is_empty, parse_number, same_text, same_value
from dialc_runtime.evaluate.semantic import FALLBACK, chrf, similarity

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = {"type": "object", "additionalProperties": False,
          "required": ["budget_max", "district", "bedrooms", "purpose"],
          "properties": {"budget_max": {"type": ["integer", "null"], "minimum": 0, "maximum": 100_000_000},
                         "district": {"type": ["string", "null"], "maxLength": 40},
                         "bedrooms": {"type": ["integer", "null"], "minimum": 0, "maximum": 10},
                         "purpose": {"type": ["string", "null"], "enum": ["rent", "buy", None]}}}
EXTRACT = {"kind": "json", "schema": SCHEMA}
INTENT = {"kind": "choice", "options": ["ready_to_sign", "comparing_options", "just_browsing", "unhappy"]}


# ---------------------------------------------------------------- normalisation


@pytest.mark.parametrize(("text", "value"), [
    ("3,000", 3000), ("3k", 3000), ("2.6K", 2600), ("1.2m", 1_200_000), ("1.2 million", 1_200_000),
    ("300万", 3_000_000), ("3.5亿", 350_000_000), ("¥4,500", 4500), ("$2,800 a month", 2800), ("€ 950", 950),
    ("4500元", 4500), ("RMB 4500", 4500), ("四千五", 4500), ("两万五", 25_000), ("三百二十万", 3_200_000),
    ("一百零五", 105), ("十五", 15), ("三百万", 3_000_000), ("４５００", 4500), (1800, 1800), (2.5, 2.5),
])
def test_numbers_with_units_currency_and_chinese_numerals(text: Any, value: float) -> None:
    assert parse_number(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "two bedrooms", "", True, None, "3 bedrooms"])
def test_non_numbers_are_not_numbers(text: Any) -> None:
    assert parse_number(text) is None


def test_chinese_numerals_need_chinese_characters_only() -> None:
    assert chinese_number("三百x") is None and chinese_number("") is None


def test_text_is_folded_for_case_width_spacing_and_punctuation() -> None:
    assert fold("  Old   TOWN. ") == "old town" and fold("ＲＥＮＴ") == "rent"
    assert same_value("RENT", "rent") and same_value("  riverside ", "Riverside")


def test_a_value_matches_when_one_contains_the_other_closely() -> None:
    assert same_value("Riverside district", "Riverside")  # 1 of 2 tokens: still half
    assert same_value("滨江", "滨江区") and same_value("the Northgate", "Northgate")
    assert not same_value("the Old Town area near the river", "Old Town")  # too much else
    assert not same_text("Eastfield", "Riverside")


def test_numbers_compare_as_numbers_and_booleans_as_booleans() -> None:
    assert same_value("2.6k", 2600) and same_value("260万", 2_600_000) and not same_value("2,500", 2600)
    assert same_value("yes", True) and same_value(False, False) and not same_value("no", True)
    assert not same_value(None, 3000) and not same_value("n/a", "Riverside")


def test_empty_values() -> None:
    assert all(is_empty(v) for v in (None, "", "null", "None", "N/A", "unknown", "未知"))
    assert not is_empty(0) and not is_empty("0")


# ---------------------------------------------------------------- metrics


GOLD = {"budget_max": 1800, "district": "Northgate", "bedrooms": None, "purpose": "rent"}


def test_field_counts_separate_wrong_missing_and_hallucinated_values() -> None:
    pred = {"budget_max": "1.8k", "district": "Eastfield", "bedrooms": 2, "purpose": None}
    # budget right (tp); district wrong (fp + fn); bedrooms given where gold is null (fp, hallucinated);
    # purpose missing (fn)
    assert field_counts(pred, GOLD) == {"tp": 1, "fp": 2, "fn": 2, "hallucinated": 1, "gold_nulls": 1}


def test_extraction_scores_on_hand_made_cases() -> None:
    perfect = extraction_scores(json.dumps({**GOLD, "budget_max": "1,800"}), GOLD)
    assert perfect["field_f1"] == 1.0 and perfect["hallucination"] == 0.0 and perfect["json_valid"] == 1.0
    half = extraction_scores('Sure: {"budget_max": 1800, "district": "Riverside", "bedrooms": 3}', GOLD)
    # tp 1, fp 2 (district wrong, bedrooms invented), fn 2 (district, purpose): F1 = 2/(2+2+2)
    assert half["field_f1"] == pytest.approx(1 / 3) and half["field_precision"] == pytest.approx(1 / 3)
    assert half["field_recall"] == pytest.approx(1 / 3) and half["hallucination"] == 1.0
    broken = extraction_scores("no json here", GOLD)
    assert broken["field_f1"] == 0.0 and broken["json_valid"] == 0.0 and broken["hallucination"] == 0.0
    nothing = extraction_scores('{"a": null}', {"budget_max": None})
    assert nothing["field_f1"] == 1.0 and nothing["field_precision"] == 1.0 and nothing["hallucination"] == 0.0


def test_hallucination_is_only_defined_with_null_gold_fields() -> None:
    assert "hallucination" not in extraction_scores("{}", {"budget_max": 5})


def test_micro_averages_pool_every_field() -> None:
    rows = [extraction_scores(json.dumps(GOLD), GOLD), extraction_scores("{}", GOLD)]
    pooled = micro(rows)
    assert pooled["precision"] == 1.0 and pooled["recall"] == 0.5 and pooled["f1"] == pytest.approx(2 / 3)
    assert pooled["hallucination"] == 0.0


def test_choice_regex_and_text_scores() -> None:
    assert item_scores("choice", " Unhappy ", "unhappy", INTENT) == {"accuracy": 1.0}
    regex = {"kind": "regex", "pattern": "[1-5]"}
    assert item_scores("regex", "I'd say 4 out of 5", "4", regex) == {"accuracy": 1.0}
    assert item_scores("regex", "satisfied", "4", regex) == {"accuracy": 0.0}
    assert item_scores("text", "the customer wants a flat", "the customer wants a flat", {})["rouge_l"] == 1.0


@pytest.mark.parametrize(("ci", "lower", "word"), [
    ((1.0, 9.0), False, "improved"), ((-9.0, -1.0), False, "dropped"), ((-3.0, 4.0), False, "no significant change"),
    ((1.0, 9.0), True, "dropped"), ((-9.0, -1.0), True, "improved"), (None, False, "no significant change"),
])
def test_verdict_in_words_from_the_interval_of_the_change(ci: Any, lower: bool, word: str) -> None:
    assert verdict(ci, lower) == word


def test_chrf_fallback_and_its_label(monkeypatch: pytest.MonkeyPatch) -> None:
    import dialc_runtime.quality.embed as embed

    assert chrf("the flat is in Riverside", "the flat is in Riverside") == pytest.approx(1.0)
    assert 0 < chrf("the flat is in Riverside", "a flat in Riverside") < 1
    assert chrf("abc", "xyz") == 0.0

    def missing() -> Path:
        raise RuntimeError("not installed")

    monkeypatch.setattr(embed, "model_dir", missing)
    values, method = similarity(["a flat in Riverside"], ["the flat is in Riverside"])
    assert method == FALLBACK and 0 < values[0] < 1


# ---------------------------------------------------------------- compiler side: leaks and references


def test_near_copies_find_edited_copies_but_not_other_dialogues() -> None:
    train = {"t1": "Hi, I'm calling about the two-bedroom on Willow Lane in Riverside. Is it still available? "
                   "Yes, the rent is 2,800 a month and the deposit is two months.",
             "t2": "我想在滨江区租一套两居室，离地铁近一点的，每月四千五以内。"}
    tests = {"g1": train["t1"].replace("Willow Lane", "Birch Road").replace("2,800", "2,650"),
             "g2": "We want to buy a three-bedroom house with a garden in Cedar Park, up to 800,000.",
             "g3": train["t2"].replace("四千五", "五千")}
    found = {i: (j, s) for i, j, s in near_copies(tests, train, 0.3)}
    assert set(found) == {"g1", "g3"} and found["g1"][0] == "t1" and found["g3"][0] == "t2"
    assert shingles("Hello World") == {"hello world"} and shingles("你好") == {"你 好"}


def test_reference_answers_are_checked_against_their_task() -> None:
    extract = GoldTask("extract", EXTRACT)
    assert check_answer(extract, GOLD) is None
    assert "missing field(s) purpose" in str(check_answer(extract, {k: v for k, v in GOLD.items() if k != "purpose"}))
    assert "unknown field(s) rooms" in str(check_answer(extract, {**GOLD, "rooms": 2}))
    assert "not one of rent, buy" in str(check_answer(extract, {**GOLD, "purpose": "lease"}))
    assert "not of type integer" in str(check_answer(extract, {**GOLD, "budget_max": "1800"}))
    assert "outside" in str(check_answer(extract, {**GOLD, "bedrooms": 11}))
    assert check_answer(GoldTask("intent", INTENT), "maybe") is not None
    assert check_answer(GoldTask("stars", {"kind": "regex", "pattern": "[1-5]"}), "6") is not None
    assert check_answer(GoldTask("stars", {"kind": "regex", "pattern": "[1-5]"}), "5") is None
    assert "longer than" in str(check_answer(GoldTask("sum", {"kind": "text", "max_chars": 5}), "too long"))


def test_reference_file_problems_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "refs.jsonl"
    path.write_text('{"id": "a", "answers": {"intent": "unhappy"}}\nnot json\n'
                    '{"id": "x", "answers": {"intent": "unhappy", "other": 1, "summary": "s"}}\n', encoding="utf-8")
    tasks = [GoldTask("intent", INTENT), GoldTask("reply", {"kind": "text", "max_chars": 50}, ["rental"])]
    problems = check_references(path, "refs.jsonl", {"a": "rental", "b": "purchase", "x": "purchase"}, tasks,
                                frozenset({"intent", "reply", "summary"}))
    assert "refs.jsonl:2: invalid JSON" in problems[0]
    assert "refs.jsonl:1: dialogue 'a' has no answer for task reply" in problems  # reply applies to rentals
    assert "refs.jsonl: dialogue 'b' has no references" in problems
    assert "refs.jsonl:3: dialogue 'x', other: no task 'other' is declared" in problems  # summary: declared, ignored
    assert len(problems) == 4


def test_shipped_gold_sets_validate_and_cover_every_task() -> None:
    from dialc.frontend import run_frontend

    for spec in ("realestate", "support"):
        front = run_frontend(ROOT / "specs" / f"{spec}.dial")
        assert not [d for d in front.diags.items if d.severity == "error"], front.diags.items
    rows = [json.loads(line) for line in (ROOT / "data/realestate/gold/references.jsonl").open(encoding="utf-8")]
    assert len(rows) >= 80 and all(len(r["answers"]) == 4 for r in rows)
    support = [json.loads(line) for line in (ROOT / "data/support/gold/references.jsonl").open(encoding="utf-8")]
    assert len(support) >= 40


# ---------------------------------------------------------------- items and scoring


def gold_files(root: Path) -> GoldSet:
    dialogues = [{"id": f"g{i}", "scenario": "rental" if i % 2 else "purchase",
                  "turns": [{"role": "customer", "text": f"I need a flat in Northgate, up to {1000 + i}."},
                            {"role": "agent", "text": "Call me on 555-0100."}]} for i in range(6)]
    (root / "gold.jsonl").write_text("".join(json.dumps(d) + "\n" for d in dialogues), encoding="utf-8")
    refs = [{"id": d["id"], "answers": {"intent": "comparing_options", "reply": "I'll send you listings.",
                                        "extract": {**GOLD, "budget_max": 1000 + i}}}
            for i, d in enumerate(dialogues)]
    (root / "refs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in refs), encoding="utf-8")
    tasks = [TaskSpec(id="extract", category="information_extraction", instruction="Extract.", output=EXTRACT),
             TaskSpec(id="intent", category="analysis", instruction="Intent?", output=INTENT),
             TaskSpec(id="reply", category="reply", instruction="Reply.", output={"kind": "text", "max_chars": 90},
                      scenarios=["rental"])]
    return GoldSet(name="gold", path=str(root / "gold.jsonl"), format="jsonl", fields=FieldMapping(),
                   roles={"agent": ["agent"], "customer": ["customer"]}, pii_scrub=True,
                   references=str(root / "refs.jsonl"), tasks=tasks)


def test_items_follow_the_training_template_and_the_task_scenarios(tmp_path: Path) -> None:
    prompt = PromptFormat(template="As a {persona}: {dialogue}\nTask: {instruction}", expression={"persona": "agent"})
    items = load_items(gold_files(tmp_path), prompt)
    assert len(items) == 6 * 2 + 3 and items[0].id == "g0/extract"  # reply only for the 3 rentals
    user = items[0].messages[-1]["content"]
    assert user.startswith("As a agent: Customer: I need a flat") and "Task: Extract." in user
    assert "555-0100" not in user  # pii_scrub, as the source does
    assert "Answer with a JSON object only" in user  # the output format, as in training
    assert token_budget(items[0], 256) == 16 + 12 * 4 and token_budget(items[-1], 256) == 30
    assert token_budget(items[0], 20) == 20


def test_the_dialogue_sample_is_seeded_and_keeps_file_order() -> None:
    dialogues = [{"id": f"d{i}"} for i in range(20)]
    first = sample(dialogues, 5, seed=3)
    assert first == sample(dialogues, 5, seed=3) and len(first) == 5
    assert [d["id"] for d in first] == sorted((d["id"] for d in first), key=lambda x: int(x[1:]))
    assert sample(dialogues, 5, seed=4) != first and sample(dialogues, 0, 3) == dialogues


class OptionLM:
    """Answers every generation with one text; prefers one option by its log-likelihood."""

    def __init__(self, text: str, favourite: str) -> None:
        self.text, self.favourite = text, favourite

    def generate(self, prompts: list[Any], max_new_tokens: int, stop: Any = ()) -> list[str]:
        return [self.text] * len(prompts)

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        return [0.0 if option == self.favourite else -5.0 for _, option in requests]


def test_results_per_task_with_secondary_metrics_and_overall(tmp_path: Path) -> None:
    items = load_items(gold_files(tmp_path), PromptFormat())
    assert choose(OptionLM("", "unhappy"), items[1:2]) == ["unhappy"]
    lm = OptionLM(json.dumps({**GOLD, "budget_max": 1000}), "comparing_options")
    outputs = [lm.text if i.kind != "choice" else "comparing_options" for i in items]
    details, method = score(items, outputs)
    out = results(details, method)
    assert list(out) == ["extract", "intent", "reply", "overall"]
    assert out["intent"].score == 1.0 and out["extract"].primary == "field_f1" and out["extract"].n == 6
    assert out["extract"].items["hallucination"] == [0.0] * 6 and out["extract"].metrics["micro_f1"] < 1
    assert out["reply"].primary == "rouge_l" and "semantic" in out["reply"].items and method in out["reply"].setting
    assert out["overall"].n == len(items)


def test_item_ids_are_dialogue_and_task() -> None:
    task = TaskSpec(id="t", category="c", instruction="i", output={"kind": "text", "max_chars": 10})
    item = GoldItem(id="d/t", dialogue_id="d", scenario="s", task=task, messages=[], reference="r")
    assert item.kind == "text" and item.constraint() == {"kind": "text", "max_chars": 10}


def test_report_names_what_each_row_measures_and_its_verdict() -> None:
    from dialc_runtime.report.page import before_after
    from dialc_runtime.report.sections import _eval_table

    rows = [{"suite": "gold · intent · accuracy", "type": "gold", "n": 40, "before": 40.0, "after": 12.5,
             "delta": -27.5, "delta_ci": [-45.0, -10.0], "verdict": "dropped", "better": "higher"},
            {"suite": "gold · extract · hallucination rate", "type": "gold", "n": 40, "before": 7.0, "after": 9.0,
             "delta": 2.0, "delta_ci": [-3.0, 6.0], "verdict": "no significant change", "better": "lower"},
            {"suite": "agreement with the labeller (hold-out; not domain accuracy)", "type": "agreement", "n": 9,
             "before": 20.0, "after": 31.0, "delta": 11.0, "delta_ci": [0.4, 23.0], "verdict": "improved"}]
    html = str(_eval_table(rows))
    assert "domain accuracy vs gold references" in html and "agreement with the labeller (not accuracy)" in html
    assert "dropped" in html and "no significant change (lower is better)" in html
    assert before_after(rows[0]).endswith(": dropped") and "lower is better" in before_after(rows[1])

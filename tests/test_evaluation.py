"""Evaluation: log-likelihood, exact match, domain metrics, bootstrap, retention gate, readers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from dialc_runtime.evaluate.scoring import (
    SuiteResult,
    bootstrap_ci,
    bootstrap_diff_ci,
    check_retention,
    evaluate_choice,
    evaluate_domain,
    evaluate_generation,
    exact_match,
    field_scores,
    format_table,
    last_number,
    parse_json_object,
    rouge_l,
    score_domain,
)
from dialc_runtime.evaluate.suites.readers import (
    ChoiceItem,
    GenItem,
    SuiteFormatError,
    read_cmmlu,
    read_gsm8k,
    read_probe,
    read_suite,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class FakeLM:
    """Scores a continuation by a lookup table; 'generates' canned answers; records its prompts."""

    def __init__(self, scores: dict[str, float] | None = None, answers: list[str] | None = None):
        self.scores, self.answers, self.prompts = scores or {}, answers or [], []

    def loglikelihood(self, requests: list[tuple[str, str]]) -> list[float]:
        return [self.scores.get(option, -10.0) for _, option in requests]

    def generate(self, prompts: list[Any], max_new_tokens: int, stop: Sequence[str] = ()) -> list:
        self.prompts += prompts
        return self.answers[: len(prompts)]


# ---------------------------------------------------------------- multiple choice


def test_acc_and_acc_norm_pick_by_total_and_per_character_loglik() -> None:
    item = ChoiceItem("q1", "?", ("a", "bbbbbbbb"), 1, "Q:", (" a", " bbbbbbbb"))
    # " a" wins on the total (-2 > -4); " bbbbbbbb" wins per character (-4/8 > -2/1)
    result = evaluate_choice(FakeLM({" a": -2.0, " bbbbbbbb": -4.0}), [item], "toy")
    assert result.metrics == {"acc": 0.0, "acc_norm": 1.0}
    assert result.details[0]["pred"] == 0 and result.n == 1


def test_acc_norm_counts_characters_without_the_delimiter_as_lm_eval() -> None:
    # lm-evaluation-harness divides by len(choice) in characters: " 北京市" is 3, not 10 bytes or 4 with the space
    item = ChoiceItem("q1", "?", ("北京市", "abcd"), 0, "Q:", (" 北京市", " abcd"))
    # per character: -3.3/3 = -1.1 < -4/4 = -1.0, so "abcd" wins; per UTF-8 byte "北京市" would (-3.3/10)
    result = evaluate_choice(FakeLM({" 北京市": -3.3, " abcd": -4.0}), [item], "toy")
    assert result.metrics == {"acc": 1.0, "acc_norm": 0.0}


def test_shared_prefix_scores_equal_one_pair_at_a_time(tiny_model_dir: Path) -> None:
    from dialc_runtime.evaluate.scoring import HFModel

    lm = HFModel.load(tiny_model_dir, batch_size=3)
    requests = [
        ("Question: What is two plus two?\nAnswer:", [" four", " five hundred and six", " 4"]),
        ("以下是关于农学的单项选择题。\n答案：", [" A", " B", " C", " D"]),
        ("Trailing space ", ["x", "yy z"]),
        ("Q", [" a much longer option that needs several tokens to be scored"]),
    ]
    shared = lm.choice_loglikelihoods(requests)
    pairwise = lm.loglikelihood([(context, option) for context, options in requests for option in options])
    flat = [value for values in shared for value in values]
    assert [len(v) for v in shared] == [3, 4, 2, 1]
    assert flat == pytest.approx(pairwise, abs=1e-4)
    assert len(set(flat)) > 5  # the options really score differently
    lm.max_len = 8  # contexts longer than this are cut on the left, as the one-pair-at-a-time scorer does
    cut = lm.choice_loglikelihoods(requests)
    assert [v for values in cut for v in values] == pytest.approx(
        lm.loglikelihood([(context, option) for context, options in requests for option in options]), abs=1e-4)
    assert cut[0] != pytest.approx(shared[0], abs=1e-3)  # the cut really changed the long question's scores


def test_loglikelihood_matches_direct_computation(tiny_model_dir: Path) -> None:
    import torch

    from dialc_runtime.evaluate.scoring import HFModel

    lm = HFModel.load(tiny_model_dir, batch_size=2)
    context, option = "Question: What is two plus two?\nAnswer:", " four"
    ctx_ids = lm.tokenizer(context, add_special_tokens=False)["input_ids"]
    all_ids = lm.tokenizer(context + option, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = lm.model(torch.tensor([all_ids])).logits[0].log_softmax(-1)
    direct = sum(logits[p - 1, all_ids[p]].item() for p in range(len(ctx_ids), len(all_ids)))
    requests = [(context, option), ("Short", " longer continuation here"), (context, " five")]
    batched = lm.loglikelihood(requests)
    assert batched[0] == pytest.approx(direct, abs=1e-4)
    singles = [lm.loglikelihood([r])[0] for r in requests]  # padding does not change scores
    assert batched == pytest.approx(singles, abs=1e-4)


def test_trailing_context_space_moves_to_the_continuation(tiny_model_dir: Path) -> None:
    from dialc_runtime.evaluate.scoring import HFModel

    lm = HFModel.load(tiny_model_dir)
    assert lm.encode_pair("Answer: ", "four") == lm.encode_pair("Answer:", " four")


def test_batched_greedy_generation_matches_one_by_one(tiny_model_dir: Path) -> None:
    from dialc_runtime.evaluate.scoring import HFModel

    lm = HFModel.load(tiny_model_dir, batch_size=4)
    prompts: list[Any] = ["Hello there, how", [{"role": "user", "content": "Hi"}], "A"]
    together = lm.generate(prompts, max_new_tokens=4)
    assert together == [lm.generate([p], max_new_tokens=4)[0] for p in prompts]


# ---------------------------------------------------------------- generation, exact match


@pytest.mark.parametrize(
    ("output", "answer", "hit"),
    [
        ("so she makes 9 * 2 = $18.\n#### 18", "18", True),
        ("The total is 1,000.00 dollars", "1000", True),
        ("about -3.5 degrees", "-3.5", True),
        ("18 eggs, wait no, 17", "18", False),
        ("Paris.\nIt is the capital.", "Paris", True),
        ("paris is the answer", "Paris", False),
        ("no number", "4", False),
    ],
)
def test_exact_match(output: str, answer: str, hit: bool) -> None:
    assert exact_match(output, answer) is hit


def test_last_number() -> None:
    assert last_number("1, 2 and 3,500.") == "3500"
    assert last_number("x = 2.50") == "2.5" and last_number("none") is None


def test_generation_suite_with_few_shot() -> None:
    items = [GenItem(f"g{i}", f"q{i}", str(i), f"work {i}\n#### {i}") for i in range(4)]
    lm = FakeLM(answers=["#### 2", "the answer is 7"])
    result = evaluate_generation(lm, items, "gsm8k", fewshot=2, chat=True)
    assert result.n == 2 and result.metrics["exact_match"] == 0.5
    first = lm.prompts[0]
    assert [m["role"] for m in first] == ["user", "assistant", "user", "assistant", "user"]
    assert first[1]["content"] == "work 0\n#### 0" and first[-1]["content"] == "q2"
    text = evaluate_generation(FakeLM(answers=["2"]), items[:2], "g", fewshot=1, chat=False)
    assert text.setting.startswith("1-shot, text")


# ---------------------------------------------------------------- domain metrics


def test_field_scores() -> None:
    ref = {"budget": 3000, "district": "Chaoyang", "bedrooms": None}
    assert field_scores({"budget": 3000.0, "district": " chaoyang "}, ref)["exact_match"] == 1.0
    half = field_scores({"budget": 3000, "district": "Haidian", "extra": 1}, ref)
    assert half["precision"] == pytest.approx(1 / 3) and half["recall"] == 0.5
    assert half["f1"] == pytest.approx(0.4) and half["exact_match"] == 0.0
    assert field_scores(None, ref)["f1"] == 0.0


def test_parse_json_object_finds_json_in_prose() -> None:
    assert parse_json_object('Sure! ```json\n{"a": {"b": 1}}\n```') == {"a": {"b": 1}}
    assert parse_json_object('{broken {"x": 2}') == {"x": 2}
    assert parse_json_object("no json") is None


def test_rouge_l() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    p, r = 4 / 4, 4 / 6  # LCS "the cat the mat"
    assert rouge_l("the cat the mat", "the cat sat on the mat") == pytest.approx(2 * p * r / (p + r))
    assert rouge_l("预算三千", "预算三千元") == pytest.approx(2 * 1 * 0.8 / 1.8)
    assert rouge_l("", "x") == 0.0


def test_domain_scores_by_output_kind() -> None:
    json_rec = {"answer": '{"a": 1}', "value": {"a": 1}, "output": {"kind": "json"}}
    assert score_domain('{"a": 1}', json_rec)["score"] == 1.0
    choice = {"answer": "rental", "value": "rental", "output": {"kind": "choice"}}
    assert score_domain(" Rental ", choice) == {"accuracy": 1.0, "score": 1.0}
    text = {"answer": "call the landlord", "output": {"kind": "text"}}
    assert score_domain("call the landlord", text)["rouge_l"] == 1.0
    records = [dict(json_rec, id="r1", messages=[{"role": "user", "content": "x"}]), text]
    text["messages"] = [{"role": "user", "content": "y"}]
    result = evaluate_domain(FakeLM(answers=['{"a": 2}', "call them"]), records)
    assert result.items["score"][0] == 0.0 and 0 < result.items["score"][1] < 1
    assert result.metrics["f1"] == 0.0 and "rouge_l" in result.metrics


# ---------------------------------------------------------------- bootstrap and retention


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    values = [1.0] * 70 + [0.0] * 30
    low, high = bootstrap_ci(values, seed=3)
    assert (low, high) == bootstrap_ci(values, seed=3)
    assert low < 0.7 < high and high - low < 0.25
    assert bootstrap_ci([1.0] * 10) == (1.0, 1.0)


def test_paired_difference_interval() -> None:
    before = [1.0] * 50 + [0.0] * 50
    after = [1.0] * 80 + [0.0] * 20  # 30 items flipped to right
    low, high = bootstrap_diff_ci(before, after, seed=0)
    assert 0.18 < low < 0.3 < high < 0.42
    assert bootstrap_diff_ci(before, before) == (0.0, 0.0)


def suite(name: str, correct: int, n: int = 100) -> SuiteResult:
    items = [1.0] * correct + [0.0] * (n - correct)
    return SuiteResult(name, "acc", {"acc": correct / n}, {"acc": items})


def test_retention_gate_passes_small_drops_and_fails_large_ones() -> None:
    before = {"probe": suite("probe", 60), "cmmlu": suite("cmmlu", 30)}
    ok, rows = check_retention(before, {"probe": suite("probe", 60), "cmmlu": suite("cmmlu", 29)}, 1.0)
    assert ok and [r["delta"] for r in rows] == pytest.approx([0.0, -1.0])
    ok, rows = check_retention(before, {"probe": suite("probe", 50), "cmmlu": suite("cmmlu", 31)}, 1.0)
    assert not ok and [r["ok"] for r in rows] == [False, True]
    assert rows[0]["delta_ci"][1] <= 0 and "FAIL (max drop 1)" in format_table(rows)
    ok, _ = check_retention({"a": 0.5}, {"a": 0.45}, {"a": 10.0})  # per-suite limits, fractions
    assert ok


# ---------------------------------------------------------------- a damaged model fails the gate


def toy_items() -> list[ChoiceItem]:
    """A toy suite whose right answer is always "owl", never as the first option."""
    others = ["cat", "dog", "cow", "fox", "bee", "elk", "yak"]
    items = []
    for i in range(8):
        wrong = [others[(i + k) % len(others)] for k in range(3)]
        answer = 1 + i % 3
        choices = wrong[:answer] + ["owl"] + wrong[answer:]
        items.append(ChoiceItem(f"t{i}", f"Name animal {i}.", tuple(choices), answer, "", ()))
    return items


def test_gate_fails_for_a_damaged_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    from dialc_runtime.evaluate.scoring import HFModel
    from dialc_runtime.train.trainer import TrainConfig, train

    items = toy_items()
    chats = [
        [
            {"role": "user", "content": it.question},
            {"role": "assistant", "content": it.choices[it.answer]},
        ]
        for it in items
    ]
    cfg = TrainConfig(method="full", max_steps=8, batch_size=8, lr=1e-2, warmup=0, max_len=64)
    good_dir = train(tiny_model_dir, [{"messages": c} for c in chats], tmp_path, cfg).model_dir
    good = HFModel.load(good_dir)
    scored = [
        ChoiceItem(it.id, it.question, it.choices, it.answer, good.render(c[:1]), it.choices)
        for it, c in zip(items, chats, strict=True)
    ]
    before = evaluate_choice(good, scored, "toy")
    damaged = HFModel.load(good_dir)
    with torch.no_grad():
        for parameter in damaged.model.parameters():
            parameter.mul_(0.0)  # every logit 0: options score by token count alone
    after = evaluate_choice(damaged, scored, "toy")
    assert before.score == 1.0 and after.score <= 0.25
    ok, rows = check_retention({"toy": before}, {"toy": after}, max_drop=1.0)
    assert not ok and rows[0]["delta"] <= -75.0
    assert check_retention({"toy": before}, {"toy": before}, max_drop=1.0)[0]


# ---------------------------------------------------------------- readers


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


PROBE = {"id": "p1", "category": "math", "question": "2+2?", "choices": ["3", "4", "5", "6"],
         "answer": 1, "target": "4"}  # fmt: skip


def test_probe_reader_and_formats(tmp_path: Path) -> None:
    path = write(tmp_path / "probe.jsonl", [PROBE, "", dict(PROBE, id="p2")])
    items = read_probe(path)
    assert [i.id for i in items] == ["p1", "p2"]
    assert items[0].context == "Question: 2+2?\nAnswer:" and items[0].options[1] == " 4"
    generated = read_suite(str(path), kind="generate")
    assert generated.kind == "generate" and generated.items[0].answer == "4"
    assert read_suite(str(path)).kind == "choice" and len(read_suite(str(path), limit=1).items) == 1
    assert read_suite(str(path), kind="probe").kind == "choice"
    with pytest.raises(SuiteFormatError, match="expected a gsm8k suite, the file looks like probe"):
        read_suite(str(path), kind="gsm8k")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "probe.jsonl:2: invalid JSON"),
        (dict(PROBE, answer=4), "probe.jsonl:2: 'answer' must be an index in 0..3"),
        (dict(PROBE, answer=True), "probe.jsonl:2: 'answer'"),
        (dict(PROBE, choices="abcd"), "probe.jsonl:2: 'choices'"),
        (dict(PROBE, question=""), "probe.jsonl:2: missing or empty 'question'"),
    ],
)
def test_probe_errors_name_file_and_line(tmp_path: Path, row: Any, message: str) -> None:
    path = write(tmp_path / "probe.jsonl", [PROBE, row])
    with pytest.raises(SuiteFormatError, match=message):
        read_probe(path)


def test_gsm8k_reader(tmp_path: Path) -> None:
    path = write(tmp_path / "g.jsonl", [{"question": "q", "answer": "3 * 4 = 12\n#### 1,200"}])
    assert read_gsm8k(path)[0].answer == "1200"
    write(path, [{"question": "q", "answer": "12"}])
    with pytest.raises(SuiteFormatError, match=r"g.jsonl:1: .*####"):
        read_gsm8k(path)


@pytest.mark.skipif(not (SHARED / "gsm8k" / "test.jsonl").is_file(), reason="no shared data")
def test_gsm8k_shared_file() -> None:
    suite = read_suite(str(SHARED / "gsm8k" / "test.jsonl"), limit=5)
    assert suite.kind == "generate" and len(suite.items) == 5 and suite.items[0].answer == "18"


CMMLU_HEADER = ",Question,A,B,C,D,Answer"


def test_cmmlu_reader_subjects_and_round_robin_limit(tmp_path: Path) -> None:
    for subject in ("arts", "law"):
        rows = [f"{i},{subject} 问题{i},甲,乙,丙,丁,{'ABCD'[i]}" for i in range(3)]
        write(tmp_path / f"{subject}.csv", [CMMLU_HEADER, *rows])
    items = read_cmmlu(tmp_path, limit=3)
    assert [i.id for i in items] == ["cmmlu/arts/0", "cmmlu/law/0", "cmmlu/arts/1"]
    assert items[0].context.endswith("D. 丁\n答案：") and items[0].options == (" A", " B", " C", " D")
    assert items[0].context.startswith("以下是关于艺术学的单项选择题，请直接给出正确答案的选项。\n\narts 问题0\nA. 甲")
    assert [i.answer for i in read_cmmlu(tmp_path, subjects=["law"])] == [0, 1, 2]
    assert read_suite(str(tmp_path / "law.csv")).items[2].category == "law"
    with pytest.raises(SuiteFormatError, match="no CMMLU subject file"):
        read_cmmlu(tmp_path, subjects=["physics"])


def test_cmmlu_errors_name_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", [CMMLU_HEADER, "0,q,a,b,c,d,A", '1,"multi\nline q",a,b,c,d,E'])
    with pytest.raises(SuiteFormatError, match=r"bad.csv:4: answer must be one of A, B, C, D"):
        read_cmmlu(path)
    write(path, [CMMLU_HEADER, "0,q,a,b,c,A"])
    with pytest.raises(SuiteFormatError, match=r"bad.csv:2: expected 7 columns"):
        read_cmmlu(path)
    write(path, ["Question,A,B"])
    with pytest.raises(SuiteFormatError, match=r"bad.csv:1: expected the header"):
        read_cmmlu(path)


@pytest.mark.skipif(not (SHARED / "cmmlu" / "dev").is_dir(), reason="no shared data")
def test_cmmlu_shared_dev_split() -> None:
    items = read_cmmlu(SHARED / "cmmlu" / "dev", subjects=["agronomy", "anatomy"])
    assert len(items) == 10 and all(0 <= i.answer < 4 for i in items)


def test_unknown_suites_are_reported() -> None:
    with pytest.raises(SuiteFormatError, match="unknown built-in suite"):
        read_suite("builtin:no-such-suite")
    with pytest.raises(SuiteFormatError, match="not found"):
        read_suite("/no/such/file.jsonl")


def test_math_isclose_sanity() -> None:
    assert math.isclose(rouge_l("a b", "a b"), 1.0)


# ---------------------------------------------------------------- the evaluate step


@pytest.fixture(scope="module")
def finetuned(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """A finetune step's output directory, its filter records and its params."""
    from test_training import FakeContext, labelled

    from dialc_runtime.steps import finetune

    root = tmp_path_factory.mktemp("steps")
    params = {"base": {"name": "tiny", "path": str(tiny_model_dir), "max_tokens": 4}, "method": {"kind": "lora"},
              "max_steps": 2, "lr": 1e-3, "holdout": {"fraction": 0.3, "seed": 7}}  # fmt: skip
    data = labelled(20)
    ctx = FakeContext(params, {"filter.quality": data}, root / "finetune.domain")
    finetune.run(ctx)  # type: ignore[arg-type]
    return root, data, params


def evaluate_context(finetuned: tuple, tmp_path: Path, **params: Any) -> Any:
    from test_training import FakeContext

    root, data, ft_params = finetuned
    probe = write(tmp_path / "probe.jsonl", [dict(PROBE, id=f"p{i}") for i in range(3)])
    settings = {"base": ft_params["base"], "holdout": {"fraction": 0.3, "seed": 7},
                "general": [{"path": str(probe)}], "max_drop": 100.0, **params}  # fmt: skip
    inputs = {"finetune.domain": [], "filter.quality": data}
    return FakeContext(settings, inputs, root / "evaluate.after")


def test_evaluate_step_reports_before_and_after(finetuned: tuple, tmp_path: Path) -> None:
    from dialc_runtime.data.split import is_holdout
    from dialc_runtime.steps import evaluate

    ctx = evaluate_context(finetuned, tmp_path)
    output = evaluate.run(ctx)
    held = [r for r in finetuned[1] if r["kept"] and is_holdout(r["dialogue_id"], 0.3, 7)]
    probe = str(tmp_path / "probe.jsonl")
    agree = "labeller_agreement"  # the hold-out measures agreement with the labeller, never domain accuracy
    assert set(ctx.emitted) == {f"{m}/{s}" for m in ("before", "after") for s in (probe, agree)} | {"table"}
    assert ctx.emitted[f"after/{agree}"]["metrics"].keys() >= {"score", "f1", "exact_match"}
    assert len(ctx.emitted[f"before/{agree}"]["items"]["score"]) == len(held)
    assert output.metrics["retention_ok"] is True and output.metrics["holdout_records"] == len(held)
    assert f"{probe}.delta" in output.metrics and f"{agree}.score.before" in output.metrics
    assert output.metrics[f"{agree}.score.verdict"] in ("improved", "no significant change", "dropped")
    report = json.loads((ctx.out_dir / "eval.json").read_text())
    assert [r["type"] for r in report["rows"]] == ["general", "agreement"]
    assert report["rows"][1]["suite"].startswith("agreement with the labeller")
    assert "agreement with the labeller" in (ctx.out_dir / "eval.txt").read_text() and ctx.advanced == 2
    lines = (ctx.out_dir / "eval.txt").read_text().splitlines()  # each row says what it is scored against
    assert " answer key " in lines[1] and " labeller " in lines[2] and " labeller " not in lines[1]
    # issue 9: 3 probe items and a handful of hold-out records are said to be too few, in the terminal
    assert any(w.startswith(f"{probe}: n = 3 items, fewer than 30") for w in ctx.warnings), ctx.warnings
    assert output.metrics[f"{probe}.n"] == 3 and len(output.metrics[f"{probe}.delta_ci"]) == 2


def test_evaluate_step_scores_against_gold_references(finetuned: tuple, tmp_path: Path) -> None:
    """A gold test set on the tiny model: rows per task and metric with n, CI and a verdict, typed apart from
    the general suites; the hold-out row, when present, is labelled agreement with the labeller."""
    from test_gold import gold_files

    from dialc_runtime.steps import evaluate

    gold = gold_files(tmp_path).model_dump(mode="json", by_alias=True)
    ctx = evaluate_context(finetuned, tmp_path, gold=gold, gold_limit=4, holdout=None)
    output = evaluate.run(ctx)
    report = json.loads((ctx.out_dir / "eval.json").read_text())
    gold_rows = [r for r in report["rows"] if r["type"] == "gold"]
    keys = [r["key"] for r in gold_rows]
    assert keys == ["gold.extract.field_f1", "gold.extract.hallucination", "gold.extract.json_valid",
                    "gold.intent.accuracy", "gold.reply.rouge_l", "gold.reply.semantic", "gold.overall.score"]
    assert all(r["verdict"] in ("improved", "no significant change", "dropped") for r in gold_rows)
    replies = gold_rows[4]["n"]  # the reply task applies to the rentals among the 4 sampled dialogues only
    assert gold_rows[0]["n"] == 4 and 0 < replies < 4 and gold_rows[-1]["n"] == 4 + 4 + replies
    assert gold_rows[1]["better"] == "lower" and "delta_ci" in gold_rows[0]
    assert output.metrics["gold_items"] == 4 + 4 + replies and "gold.intent.accuracy.verdict" in output.metrics
    assert not any(r["type"] == "agreement" for r in report["rows"])
    table = (ctx.out_dir / "eval.txt").read_text()
    assert "gold · extract · field F1" in table and "(lower is better)" in table
    gold_line = next(line for line in table.splitlines() if "gold · extract · field F1" in line)
    assert " gold " in gold_line and table.splitlines()[0].split()[-4:] == ["vs", "gate", "/", "verdict"]
    assert ctx.emitted["after/gold/extract"]["details"][0]["reference"]["district"] == "Northgate"


def test_evaluate_step_fails_the_gate_with_the_table(
    finetuned: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dialc_runtime.evaluate.scoring
    from dialc_runtime.errors import StepFailed
    from dialc_runtime.steps import evaluate

    ctx = evaluate_context(finetuned, tmp_path, max_drop=0.5, holdout=None)

    def collapsed(before: Any, after: Any, max_drop: float) -> tuple[bool, list]:
        rows = [dict(suite=n, before=50.0, after=20.0, delta=-30.0, max_drop=max_drop, ok=False)
                for n in before]  # fmt: skip
        return False, rows

    monkeypatch.setattr(dialc_runtime.evaluate.scoring, "check_retention", collapsed)
    with pytest.raises(StepFailed, match=r"(?s)retention gate failed.*FAIL \(max drop 0.5\)"):
        evaluate.run(ctx)
    assert (ctx.out_dir / "eval.txt").is_file()  # the table is kept for the report


def test_a_fine_tune_on_a_handful_or_within_warm_up_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 9: a fine-tune on 14 examples, or with fewer optimizer steps than warm-up, said nothing."""
    from test_training import FakeContext, labelled

    import dialc_runtime.train.trainer as trainer
    from dialc_runtime.steps import finetune

    def fake_train(base: Any, records: list, out_dir: Path, cfg: Any, progress: Any = None, **_: Any) -> Any:
        return trainer.TrainResult(out_dir=out_dir, steps=3, final_loss=1.0, log=[], tokens=10, seconds=1.0,
                                   resumed_from=None, examples=len(records), dropped=0, adapter_dir=out_dir)

    monkeypatch.setattr(trainer, "train", fake_train)
    params = {"base": {"name": "tiny", "path": "unused"}, "method": {"kind": "lora"}, "warmup": 10,
              "holdout": {"fraction": 0.3, "seed": 7}}  # fmt: skip
    ctx = FakeContext(params, {"filter.quality": labelled(20)}, tmp_path / "finetune.domain")
    out = finetune.run(ctx)  # type: ignore[arg-type]
    n = out.metrics["records"]
    assert any(f"fine-tuned on {n} examples, fewer than 50" in w for w in ctx.warnings), ctx.warnings
    assert any("3 optimizer step(s), not more than the 10 warm-up step(s)" in w for w in ctx.warnings)
    assert out.metrics["warnings"] == ctx.warnings and out.metrics["warmup_steps"] == 10
    assert "warnings" not in ctx.emitted["result"]  # the record (and the cache) are unchanged

"""The filter's global view as columns: rows read back as they were given, and the filter's decisions, records
and metrics the same as computed over plain dicts (random labels, verdicts, candidates, top_k, keep rules)."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

import pytest
from runtime_fakes import MemoryContext

from dialc.plan import FilterParams
from dialc_runtime.quality.aggregate import parse_dimensions
from dialc_runtime.quality.best_of import candidate_fields, one_per_prompt, selection_metrics
from dialc_runtime.quality.columns import ABSENT, Column, SerialColumn, Table
from dialc_runtime.quality.expects import check_all, summary
from dialc_runtime.steps import filter as filter_step


def same(a: Any, b: Any) -> bool:
    """Equal as JSON tells values apart (1, 1.0 and true differ; NaN equals NaN), and of the same types."""
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and repr(a) == repr(b)


def random_value(r: random.Random) -> Any:
    return r.choice(
        [
            None,
            True,
            False,
            0,
            1,
            1.0,
            0.0,
            -0.0,
            float("nan"),
            r.randint(-3, 3),
            r.random(),
            "",
            "a",
            "x" * r.randint(60, 70),
            f"prompts-{r.randint(0, 999):06d}",
            "id-٣",
            "99999999999999999999",
            {"a": 1},
            {"a": 1.0},
            {"b": [1, True]},
            [1, 2],
            [],
            r.choice(["kept", "keep", "gate:valid"]),
        ]
    )


@pytest.mark.parametrize("seed", range(5))
def test_a_table_gives_back_each_row_as_it_was_given(seed: int) -> None:
    r = random.Random(seed)
    fields = ["id", "a", "b", "c", "quality", "d"]
    table = Table(serial=("id",), nested=("quality",))
    rows: list[dict[str, Any]] = []
    for _ in range(300):
        row = {f: random_value(r) for f in r.sample(fields[:4], r.randint(0, 4))}
        if r.random() < 0.8:
            row["quality"] = {d: random_value(r) for d in r.sample(["x", "y"], r.randint(0, 2))}
        rows.append(row)
        table.append(row)
    for _ in range(200):  # updates: changed and new fields, including ones the row did not have
        i = r.randrange(len(rows))
        change = {f: random_value(r) for f in r.sample(["a", "d", "id"], r.randint(1, 3))}
        rows[i].update(change)
        table.update(i, change)
    assert len(table) == len(rows)
    for i, row in enumerate(rows):
        got = table[i]
        assert set(got) == set(row) and len(got) == len(row)
        for key, value in row.items():
            assert key in got and same(value, got[key]) and same(value, got.get(key))
        assert "zz" not in got and got.get("zz", 5) == 5
        with pytest.raises(KeyError):
            got["zz"]
    ids = [dict(t)["id"] for t in table if "id" in t]
    assert len(ids) == sum(1 for row in rows if "id" in row)
    assert all(same(a, b) for a, b in zip(ids, [row["id"] for row in rows if "id" in row], strict=True))


def test_codes_widen_as_distinct_values_grow_and_serials_keep_their_digits() -> None:
    column = Column()
    for i in range(70_000):
        column.append(f"v{i}")
    assert column.codes.typecode == "I" and column.get(69_999) == "v69999" and column.get(0) == "v0"
    serial = SerialColumn()
    values = ["prompts-000000", "p#c12", "007", "x", 12, None, "a1b", "٣", "9" * 19, "", ABSENT]
    for v in values:
        serial.append(v)
    assert [serial.get(i) for i in range(len(values))] == values
    assert type(serial.get(4)) is int


def test_a_nested_column_holds_only_mappings() -> None:
    table = Table(nested=("quality",))
    with pytest.raises(TypeError):
        table.append({"quality": 3})


# ---- the filter over random inputs against plain dicts ------------------------------------------------------


DIMS = {
    "valid": {"kind": "rule", "gate": True},
    "helpful": {"kind": "judge", "weight": 2.0},
    "novel": {"kind": "dedup"},
}


def random_inputs(r: random.Random, n: int) -> dict[str, list[dict[str, Any]]]:
    labels, valid, helpful, novel = [], [], [], []
    for p in range(n):
        k_of = r.choice([1, 1, 3])
        for k in range(k_of):
            ok = r.random() > 0.1
            answer = r.choice(["yes", "no", "a long answer about the flat " * r.randint(1, 4), "ready_to_sign"])
            record = {
                "id": f"prompts-{p:06d}",
                **candidate_fields(f"prompts-{p:06d}", k, k_of),
                "category": r.choice(["analysis", "summarization", "extraction"]),
                "scenario": r.choice(["rental", "purchase", "complaint"]),
                "task_id": r.choice(["t1", "t2"]),
                "dialogue_id": f"d{r.randint(0, 20)}",
                "expression": {"tone": r.choice(["formal", "terse"])},
                "answer": answer,
                "ok": ok,
                "value": {"text": answer} if r.random() < 0.3 else answer,
                "messages": [{"role": "user", "content": "x"}],
                "error": None if ok else "invalid",
            }
            labels.append(record)
            rid = record["id"]
            if r.random() > 0.05:
                valid.append({"id": rid, "score": 1.0 if ok else 0.0, "passed": ok, "detail": "v"})
            score = r.choice([0.0, 0.25, 0.5, 0.75, 1.0, None])
            helpful.append(
                {
                    "id": rid,
                    "score": score,
                    "passed": None if score is None else score >= 0.5,
                    "raw": r.randint(1, 5),
                    "cost": {"model_calls": 1, "prompt_tokens": r.randint(50, 60)},
                    "detail": f"judged {score}",
                }
            )
            copy = r.random() < 0.3
            novel.append(
                {
                    "id": rid,
                    "score": 0.0 if copy else 1.0,
                    "passed": not copy,
                    "detail": "d",
                    **({"duplicate_of": "prompts-000000"} if copy else {}),
                }
            )
    return {"label.labels": labels, "score.valid": valid, "score.helpful": helpful, "score.novel": novel}


def reference(inputs: dict[str, list[dict[str, Any]]], params: dict[str, Any], seed: int) -> tuple[Any, Any]:
    """The records and metrics computed the plain way: every record a dict, the figures over a list of them."""
    typed = FilterParams(**params)
    scores = {
        step.split(".", 1)[1]: {r["id"]: r for r in recs} for step, recs in inputs.items() if step.startswith("score.")
    }
    dims = parse_dimensions(params["dimensions"])
    rows = filter_step.decide_all(inputs["label.labels"], scores, dims, typed)
    prompts = one_per_prompt(rows)
    metrics = summary(prompts, list(dims), seed)
    if len(rows) > len(prompts):
        metrics["best_of"] = selection_metrics(rows)
    metrics["wiped_out"] = filter_step.wiped_out(prompts)
    expects = [{**e, "span": ""} for e in params.get("expects", [])]
    metrics["expects"] = check_all(expects, prompts)
    return rows, metrics


@pytest.mark.parametrize("seed", range(6))
def test_the_columnar_view_decides_and_measures_as_plain_dicts_do(seed: int) -> None:
    r = random.Random(seed)
    inputs = random_inputs(r, r.randint(20, 120))
    params: dict[str, Any] = {
        "dimensions": DIMS,
        "top_k": r.choice([0, 0, 3, 10]),
        "keep": r.choice([None, {"op": ">=", "left": {"ref": "score"}, "right": 0.4}]),
        "expects": [
            {"metric": m, "op": ">=", "value": 0.5}
            for m in (
                "kept_rate",
                "distinct_1",
                "distinct_2",
                "mean:helpful",
                "pass_rate:novel",
                "balance_p:scenario",
                "balance_p:tone",
                "duplicate_rate",
                "mean:score",
            )
        ],
    }
    ctx = MemoryContext("filter.quality", params, inputs, seed=seed)
    out = filter_step.run(ctx)  # type: ignore[arg-type]
    rows, metrics = reference(inputs, params, seed)
    emitted = ctx.emitted
    assert list(emitted) == [row["id"] for row in rows]
    for row in rows:
        assert emitted[row["id"]] == row
    assert out.metrics == metrics
    assert metrics["diversity"]["texts"] > 0

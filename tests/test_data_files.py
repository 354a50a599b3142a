"""Project data files: the corpora and the built-in probe suite parse and meet their quotas."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIALOGUES = ROOT / "data" / "realestate" / "dialogues.jsonl"
CHATS = ROOT / "data" / "support" / "chats.csv"
SUITES = ROOT / "dialc_runtime" / "evaluate" / "suites"
PROBE = SUITES / "general_probe.jsonl"
BUILDER = SUITES / "build_general_probe.py"

SCENARIOS = {"rental", "purchase", "viewing", "transaction", "after_sales", "complaint"}
TOPICS = {"refund", "delivery", "defect", "account"}
CATEGORIES = {"arithmetic", "units", "dates", "reading", "instruction", "commonsense"}
CJK = re.compile(r"[\u4e00-\u9fff]")
PHONE = re.compile(r"\b\d{3}-\d{4}\b")  # anything shaped like a local phone number
FAKE_PHONE = re.compile(r"555-01\d\d")  # the range reserved for fiction


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        assert line.strip(), f"{path.name}:{number}: blank line"
        row = json.loads(line)
        assert isinstance(row, dict), f"{path.name}:{number}: not an object"
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def dialogues() -> list[dict[str, Any]]:
    return read_jsonl(DIALOGUES)


@pytest.fixture(scope="module")
def chats() -> list[dict[str, str]]:
    with CHATS.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["conversation_id", "topic", "speaker", "message"]
        return list(reader)


@pytest.fixture(scope="module")
def probe() -> list[dict[str, Any]]:
    return read_jsonl(PROBE)


# --- real-estate dialogues ---


def test_dialogues_have_the_documented_shape(dialogues: list[dict[str, Any]]) -> None:
    for row in dialogues:
        assert set(row) == {"id", "scenario", "language", "turns"}, row.get("id")
        assert re.fullmatch(r"re-\d{4}", row["id"])
        assert row["scenario"] in SCENARIOS, row["id"]
        assert row["language"] in {"en", "zh"}, row["id"]
        assert 6 <= len(row["turns"]) <= 14, row["id"]
        for turn in row["turns"]:
            assert set(turn) == {"role", "text"}, row["id"]
            assert turn["role"] in {"agent", "customer"}, row["id"]
            assert isinstance(turn["text"], str) and turn["text"].strip(), row["id"]
        assert {t["role"] for t in row["turns"]} == {"agent", "customer"}, row["id"]


def test_dialogue_ids_are_unique(dialogues: list[dict[str, Any]]) -> None:
    ids = [row["id"] for row in dialogues]
    assert len(ids) == len(set(ids))


def test_dialogue_counts_per_scenario_and_language(dialogues: list[dict[str, Any]]) -> None:
    assert len(dialogues) >= 66
    per_scenario = Counter(row["scenario"] for row in dialogues)
    assert set(per_scenario) == SCENARIOS
    assert min(per_scenario.values()) >= 10, per_scenario
    languages = Counter(row["language"] for row in dialogues)
    assert 10 <= languages["zh"] <= 16, languages
    assert languages["en"] > languages["zh"]


def test_dialogue_language_field_matches_the_text(dialogues: list[dict[str, Any]]) -> None:
    for row in dialogues:
        text = " ".join(turn["text"] for turn in row["turns"])
        assert bool(CJK.search(text)) == (row["language"] == "zh"), row["id"]


def test_only_fictional_contact_details(dialogues: list[dict[str, Any]]) -> None:
    text = "\n".join(turn["text"] for row in dialogues for turn in row["turns"])
    phones = PHONE.findall(text)
    assert len(phones) >= 3  # PII scrubbing is tested on these
    assert all(FAKE_PHONE.fullmatch(p) for p in phones), phones
    emails = re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", text)
    assert all(e.endswith("@example.com") for e in emails), emails


# --- e-commerce support chats (one row per turn) ---


def test_chat_rows_are_well_formed(chats: list[dict[str, str]]) -> None:
    for row in chats:
        assert re.fullmatch(r"CS-\d{4}", row["conversation_id"]), row
        assert row["topic"] in TOPICS, row
        assert row["speaker"] in {"Support", "Customer"}, row
        assert row["message"].strip(), row
        assert not CJK.search(row["message"]), row


def test_chat_conversations_are_contiguous_and_single_topic(chats: list[dict[str, str]]) -> None:
    order = [
        cid
        for i, cid in enumerate(r["conversation_id"] for r in chats)
        if i == 0 or cid != chats[i - 1]["conversation_id"]
    ]
    assert len(order) == len(set(order)), "a conversation's turns are split across the file"
    topics: dict[str, set[str]] = {}
    for row in chats:
        topics.setdefault(row["conversation_id"], set()).add(row["topic"])
    assert all(len(t) == 1 for t in topics.values())


def test_chat_counts_per_topic(chats: list[dict[str, str]]) -> None:
    turns = Counter(row["conversation_id"] for row in chats)
    assert len(turns) >= 30
    assert all(4 <= n <= 10 for n in turns.values()), turns
    topic_of = {row["conversation_id"]: row["topic"] for row in chats}
    per_topic = Counter(topic_of.values())
    assert set(per_topic) == TOPICS
    assert min(per_topic.values()) >= 6, per_topic
    for cid in turns:
        speakers = {r["speaker"] for r in chats if r["conversation_id"] == cid}
        assert speakers == {"Support", "Customer"}, cid


# --- the general probe suite ---


def test_probe_items_have_the_documented_shape(probe: list[dict[str, Any]]) -> None:
    assert len(probe) >= 300
    for row in probe:
        assert set(row) == {"id", "category", "question", "choices", "answer", "target"}
        assert re.fullmatch(r"gp-\d{4}", row["id"])
        assert row["category"] in CATEGORIES, row["id"]
        assert isinstance(row["question"], str) and row["question"].strip(), row["id"]
        choices = row["choices"]
        assert len(choices) == 4 and all(isinstance(c, str) and c.strip() for c in choices)
        assert len(set(choices)) == 4, row["id"]
        answer = row["answer"]
        assert isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < 4
        assert row["target"] == choices[answer], row["id"]


def test_probe_ids_and_questions_are_unique(probe: list[dict[str, Any]]) -> None:
    assert len({row["id"] for row in probe}) == len(probe)
    assert len({row["question"] for row in probe}) == len(probe)


def test_probe_category_counts(probe: list[dict[str, Any]]) -> None:
    per_category = Counter(row["category"] for row in probe)
    assert set(per_category) == CATEGORIES
    for category in ("reading", "instruction", "commonsense"):
        assert per_category[category] >= 30, per_category
    # a `limit` takes a prefix: the first items must already span every category
    assert {row["category"] for row in probe[: 2 * len(CATEGORIES)]} == CATEGORIES


def test_probe_answer_positions_are_balanced(probe: list[dict[str, Any]]) -> None:
    positions = Counter(row["answer"] for row in probe)
    for position in range(4):
        assert 0.15 <= positions[position] / len(probe) <= 0.35, positions


def test_probe_builder_is_deterministic_and_the_file_is_current(tmp_path: Path) -> None:
    outputs = [tmp_path / "first.jsonl", tmp_path / "second.jsonl"]
    for out in outputs:
        subprocess.run(
            [sys.executable, str(BUILDER), "--out", str(out)],
            check=True,
            capture_output=True,
            cwd=tmp_path,
        )
    first, second = (out.read_bytes() for out in outputs)
    assert first == second
    assert first == PROBE.read_bytes(), "general_probe.jsonl is stale: rerun the builder"


def test_general_probe_path_points_at_the_packaged_file() -> None:
    from dialc_runtime.evaluate.suites import general_probe_path

    assert general_probe_path() == PROBE.resolve()
    assert general_probe_path().is_file()

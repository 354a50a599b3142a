"""dialc_runtime.engine.selection: dbt-style selectors → step ids, with helpful errors for unknown names."""

from __future__ import annotations

import pytest
from runtime_fakes import make_plan

from dialc_runtime.engine.selection import resolve_name, select_steps
from dialc_runtime.errors import SelectionError

# the shape of a real pipeline: a diamond (ingest feeds sample and score) and two steps named `labels`
PLAN = make_plan([
    ("ingest.dialogues", {}, []),
    ("tasks.tasks", {}, ["ingest.dialogues"]),
    ("sample.prompts", {}, ["ingest.dialogues", "tasks.tasks"]),
    ("label.labels", {}, ["sample.prompts"]),
    ("score.grounded", {}, ["label.labels", "ingest.dialogues"]),
    ("filter.quality", {}, ["label.labels", "score.grounded"]),
    ("export.labels", {}, ["filter.quality"]),
    ("finetune.domain", {}, ["filter.quality"]),
])
ALL = {s.id for s in PLAN.steps}


@pytest.mark.parametrize(
    ("selectors", "expected"),
    [
        (["filter.quality"], {"filter.quality"}),
        (["quality"], {"filter.quality"}),  # a bare name that only one step has
        (["+grounded"], {"score.grounded", "label.labels", "sample.prompts", "tasks.tasks", "ingest.dialogues"}),
        (["grounded+"], {"score.grounded", "filter.quality", "export.labels", "finetune.domain"}),
        (["+tasks.tasks+"], ALL),
        (["tasks+"], ALL - {"ingest.dialogues"}),
        (["domain", "export.labels"], {"finetune.domain", "export.labels"}),  # selectors add up
        (["domain export.labels"], {"finetune.domain", "export.labels"}),  # as do words of one selector
        (["+quality", "quality+"], ALL),
    ],
)
def test_selectors_pick_steps_and_their_relatives(selectors: list[str], expected: set[str]) -> None:
    assert select_steps(PLAN, selectors) == expected


def test_no_selector_means_every_step() -> None:
    assert select_steps(PLAN, None) == ALL


def test_ancestors_follow_every_path_of_a_diamond() -> None:
    # score.grounded reads ingest.dialogues directly and through label → sample
    assert "ingest.dialogues" in select_steps(PLAN, ["+score.grounded"])
    assert select_steps(PLAN, ["ingest.dialogues+"]) == ALL


def test_an_id_always_wins_over_a_name() -> None:
    assert resolve_name(PLAN, "label.labels") == "label.labels"


def test_a_name_two_steps_share_asks_for_the_id() -> None:
    with pytest.raises(SelectionError, match=r"^step name 'labels' is ambiguous: label\.labels, export\.labels$"):
        select_steps(PLAN, ["labels+"])


@pytest.mark.parametrize(
    ("typo", "hint"),
    [
        ("qualty", "'quality'"),
        ("filter.qualty", "'filter.quality'"),
        ("grounding", "'grounded'"),
        # the close name is shared: suggesting it would only lead to the ambiguity error
        ("lables", "'label.labels' or 'export.labels'"),
    ],
)
def test_an_unknown_name_gets_a_suggestion_and_the_list_of_steps(typo: str, hint: str) -> None:
    with pytest.raises(SelectionError) as caught:
        select_steps(PLAN, [f"+{typo}"])
    message = str(caught.value)
    assert message.startswith(f"unknown step {typo!r} (did you mean {hint}?); steps: ingest.dialogues, ")
    assert message.endswith(", ".join(s.id for s in PLAN.steps))


def test_an_unknown_name_without_a_close_match_lists_the_steps() -> None:
    with pytest.raises(SelectionError, match=r"^unknown step 'zzz'; steps: ingest\.dialogues, tasks\.tasks"):
        resolve_name(PLAN, "zzz")


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("", "empty step selector"),
        ("   ", "empty step selector"),
        ("+", "bad selector '+': use name, +name, name+ or +name+"),
        ("label+s", "bad selector 'label+s'"),
    ],
)
def test_malformed_selectors(selector: str, message: str) -> None:
    with pytest.raises(SelectionError, match=message.replace("+", r"\+")):
        select_steps(PLAN, [selector])

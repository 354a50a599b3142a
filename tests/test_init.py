"""`dialc init NAME [--from CORPUS]` → a project whose spec validates with no issue and plans a run; on every
shipped corpus the guessed mapping is the one the shipped specs write by hand; a corpus it cannot understand is a
clear error that leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dialc.cli import app
from dialc.frontend import run_frontend
from dialc.scaffold import inspect_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPORA = sorted(p for p in [*ROOT.glob("data/**/*.jsonl"), *ROOT.glob("data/**/*.csv")]
                 if p.name != "references.jsonl")  # reference answers are no dialogue corpus


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


def init(runner: CliRunner, where: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["init", str(where), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def issues(spec: Path) -> list[str]:
    front = run_frontend(spec, allow=[])
    return [f"{d.severity} {d.code}: {d.message}" for d in front.diags.items]


def plans(runner: CliRunner, spec: Path) -> None:
    result = runner.invoke(app, ["run", str(spec), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "label.labels" in result.output and "ingest.dialogues" in result.output


def test_init_without_a_corpus_makes_a_project_that_validates_and_plans(tmp_path: Path, runner: CliRunner) -> None:
    code, output = init(runner, tmp_path / "shop")
    assert code == 0, output
    project = tmp_path / "shop"
    assert sorted(p.name for p in project.iterdir()) == [".gitignore", "README.md", "data", "shop.dial"]
    assert "runs/" in (project / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert (project / "data" / "dialogues.jsonl").is_file()
    assert "dialc validate shop.dial" in (project / "README.md").read_text(encoding="utf-8")
    assert issues(project / "shop.dial") == []
    validated = runner.invoke(app, ["validate", str(project / "shop.dial")])
    assert validated.exit_code == 0 and "no issues" in validated.output
    formatted = runner.invoke(app, ["fmt", "--check", str(project / "shop.dial")])
    assert formatted.exit_code == 0, formatted.output
    plans(runner, project / "shop.dial")


@pytest.mark.parametrize("corpus", [pytest.param(p, id=p.relative_to(ROOT).as_posix()) for p in CORPORA])
def test_init_from_each_shipped_corpus_validates_and_plans(corpus: Path, tmp_path: Path, runner: CliRunner) -> None:
    code, output = init(runner, tmp_path / "proj", "--from", str(corpus))
    assert code == 0, output
    spec = tmp_path / "proj" / "proj.dial"
    copied = tmp_path / "proj" / "data" / corpus.name
    assert copied.read_bytes() == corpus.read_bytes()
    assert issues(spec) == []
    assert f'path = "data/{corpus.name}"' in spec.read_text(encoding="utf-8")
    plans(runner, spec)


def test_the_guessed_mappings_are_the_ones_the_shipped_specs_write() -> None:
    jsonl = inspect_corpus(ROOT / "data" / "realestate" / "dialogues.jsonl")
    assert (jsonl.format, jsonl.fields) == ("jsonl", {"id": "id", "scenario": "scenario", "turns": "turns",
                                                      "role": "role", "text": "text"})
    assert set(jsonl.labels) == {"agent", "customer"}
    assert set(jsonl.scenarios) == {"rental", "purchase", "viewing", "transaction", "after_sales", "complaint"}
    chats = inspect_corpus(ROOT / "data" / "support" / "chats.csv")
    assert (chats.format, chats.fields) == ("csv", {"id": "conversation_id", "scenario": "topic",
                                                    "role": "speaker", "text": "message"})
    assert set(chats.labels) == {"Support", "Customer"}
    assert set(chats.scenarios) == {"refund", "delivery", "defect", "account"}


def test_roles_and_fields_of_other_shapes_are_guessed(tmp_path: Path, runner: CliRunner) -> None:
    """A ShareGPT-like JSONL (messages / from / value, a `category`) and a CSV with user / assistant labels."""
    rows = [{"conv": f"c{i}", "category": ["billing", "tech support"][i % 2], "lang": "en",
             "messages": [{"from": "User", "value": f"My question number {i} is about the invoice."},
                          {"from": "Assistant", "value": f"Here is a long and detailed answer to question {i}."}]}
            for i in range(6)]
    corpus = tmp_path / "share.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    mapping = inspect_corpus(corpus)
    assert mapping.fields == {"id": "conv", "scenario": "category", "turns": "messages", "role": "from",
                              "text": "value"}
    code, output = init(runner, tmp_path / "share", "--from", str(corpus))
    assert code == 0, output
    spec = (tmp_path / "share" / "share.dial").read_text(encoding="utf-8")
    assert 'roles = {agent: ["Assistant"], customer: ["User"]}' in spec or \
           'roles = {customer: ["User"], agent: ["Assistant"]}' in spec
    assert "\nscenarios {" not in spec  # "tech support" is no .dial name: no taxonomy, balance by category
    assert issues(tmp_path / "share" / "share.dial") == []
    plans(runner, tmp_path / "share" / "share.dial")


BAD = {  # file name, content (or a shipped file), what the message says
    "references": ("", ROOT / "data" / "realestate" / "gold" / "references.jsonl", "no field holds a list of turns"),
    "not json": ("c.jsonl", "{\"id\": 1}\nthis is not json\n", "c.jsonl:2: not a JSON value"),
    "arrays": ("c.jsonl", "[1, 2]\n[3]\n", "expected a JSON object per line"),
    "empty": ("c.csv", "", "is empty"),
    "two columns": ("c.csv", "a,b\n1,2\n3,4\n", "at least 4 columns"),
    "no speaker": ("c.csv", "a,b,c,d\n" + "".join(f"{'x' * 50}{i},{'y' * 60}{i},{'z' * 70}{i},w{i}\n"
                                                  for i in range(9)),
                   "no field names the speaker"),
    "deep": ("c.jsonl", "[" * 100_000 + "\n", "c.jsonl:1: not a JSON value (nested too deep)"),
    "prose": ("c.txt", "Dear diary. Today I wrote a corpus; it was not a CSV at all.\n", "not a JSONL"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_corpus_it_cannot_understand_is_a_clear_error_and_leaves_nothing(
        case: str, tmp_path: Path, runner: CliRunner) -> None:
    name, content, message = BAD[case]
    if isinstance(content, Path):
        corpus = content
    else:
        corpus = tmp_path / name
        corpus.write_text(content, encoding="utf-8")
    where = tmp_path / "out"
    where.mkdir()
    code, output = init(runner, where / "proj", "--from", str(corpus))
    assert code == 1
    assert output.startswith("dialc: error: ") and message in output, output
    assert "Traceback" not in output
    assert list(where.iterdir()) == []  # no project, no staging folder


def test_missing_corpus_and_existing_folder(tmp_path: Path, runner: CliRunner) -> None:
    code, output = init(runner, tmp_path / "p", "--from", str(tmp_path / "nope.jsonl"))
    assert code == 1 and "cannot read the corpus" in output and not (tmp_path / "p").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine", encoding="utf-8")
    code, output = init(runner, tmp_path / "taken")
    assert code == 1 and "already exists" in output
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]

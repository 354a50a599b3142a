"""`dialc init NAME [--from CORPUS]` → a project folder: a spec that validates and runs, data/, .gitignore, README.

With a corpus (JSONL: one dialogue per line; CSV: one turn per row) the source's field mapping, the speaker
roles and the scenario taxonomy are guessed from the file's first rows; without one, a small example corpus
stands in. The project is written into a temporary folder and renamed into place only once its spec has
passed `validate`: a corpus that cannot be understood leaves nothing behind. Light: json and csv only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialc.files import open_regular

INSPECT_BYTES = 8 << 20  # the corpus's first 8 MiB are read to guess its mapping
MAX_ROLES = 12  # more distinct speaker labels than this: the role field was guessed wrong
MAX_SCENARIOS = 50  # more distinct values than this is no scenario taxonomy
NAME_RE = re.compile(r"^[^\W\d]\w*$")
KEYWORDS = {"include", "keep", "when", "expect", "and", "or", "not", "weight", "enum", "true", "false"}
AGENT_WORDS = ("agent", "support", "assistant", "bot", "staff", "rep", "representative", "seller", "operator",
               "advisor", "consultant", "service", "gpt", "model", "sales", "broker", "客服", "经纪人")
CUSTOMER_WORDS = ("customer", "user", "client", "buyer", "caller", "human", "guest", "tenant", "visitor",
                  "patient", "顾客", "客户", "用户")
PREFERRED = {  # field names tried first, in order
    "id": ("id", "conversation_id", "dialogue_id", "dialog_id", "chat_id", "session_id", "thread_id", "conv_id"),
    "scenario": ("scenario", "topic", "category", "intent", "domain", "label", "type", "subject"),
    "turns": ("turns", "messages", "conversation", "dialogue", "dialog", "utterances", "conversations"),
    "role": ("role", "speaker", "from", "author", "sender", "participant", "who"),
    "text": ("text", "content", "message", "value", "utterance", "body"),
}


class ScaffoldError(Exception):
    """Why a project cannot be made (a corpus that cannot be understood, a folder that exists)."""


@dataclass
class Mapping:
    """What `source { … }` needs to read a corpus, as guessed from it."""

    format: str  # jsonl or csv
    fields: dict[str, str]  # id, scenario, role, text (and turns for JSONL) → the corpus's field names
    labels: Counter[str] = field(default_factory=Counter)  # raw speaker label → turns
    scenarios: Counter[str] = field(default_factory=Counter)  # scenario value → dialogues
    dialogues: int = 0
    partial: bool = False  # only the corpus's first INSPECT_BYTES were read


# ---- reading the corpus ------------------------------------------------------------------------------------
def inspect_corpus(path: Path) -> Mapping:
    """Guess a corpus's format, field mapping, speaker labels and scenarios from its first rows."""
    try:
        with open_regular(path) as handle:  # regular files only (never a FIFO or a device), read with a bound
            raw = handle.read(INSPECT_BYTES + 1)
    except OSError as exc:
        raise ScaffoldError(f"cannot read the corpus: {exc}") from exc
    text = raw[:INSPECT_BYTES].decode("utf-8", "replace").removeprefix("\ufeff")
    if len(raw) > INSPECT_BYTES:  # a partial last line is not a row
        text = text[: text.rfind("\n") + 1]
    if not text.strip():
        raise ScaffoldError(f"{path} is empty")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson") or (suffix != ".csv" and text.lstrip().startswith("{")):
        mapping = _inspect_jsonl(path, text)
    elif suffix in (".csv", ".tsv") or suffix == "" or "," in text.split("\n", 1)[0]:
        mapping = _inspect_csv(path, text)
    else:
        raise ScaffoldError(f"{path}: not a JSONL (one JSON object per line) or CSV (a header, one turn per row) "
                            "corpus")
    mapping.partial = len(raw) > INSPECT_BYTES
    return mapping


def _inspect_jsonl(path: Path, text: str) -> Mapping:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested thousands deep
            reason = exc if isinstance(exc, ValueError) else "nested too deep"
            raise ScaffoldError(f"{path}:{number}: not a JSON value ({reason}); is this a JSONL file?") from exc
        if not isinstance(value, dict):
            raise ScaffoldError(f"{path}:{number}: expected a JSON object per line (one dialogue), got "
                                f"{type(value).__name__}")
        rows.append(value)
    turns_field = _pick("turns", [k for k in _keys(rows) if _share(rows, k, _is_turn_list) >= 0.9])
    if turns_field is None:
        raise ScaffoldError(f"{path}: no field holds a list of turns (objects with a speaker and a text) in most "
                            f"rows; fields of the first row: {', '.join(map(str, rows[0]))}")
    turns = [t for row in rows for t in row.get(turns_field) or [] if isinstance(t, dict)]
    role, text_field = _speaker_and_text(path, turns, _keys(turns))
    others = [k for k in _keys(rows) if k != turns_field]
    ident = _identifier(path, rows, others)
    scenario = _scenario(path, rows, [k for k in others if k != ident])
    mapping = Mapping("jsonl", {"id": ident, "scenario": scenario, "turns": turns_field, "role": role,
                                "text": text_field}, dialogues=len(rows))
    mapping.labels.update(str(t[role]) for t in turns if isinstance(t.get(role), str))
    mapping.scenarios.update(_text(row.get(scenario)) for row in rows if _text(row.get(scenario)))
    return mapping


def _inspect_csv(path: Path, text: str) -> Mapping:
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
        cells = [row for row in reader if any(c.strip() for c in row)]
    except (csv.Error, StopIteration) as exc:
        raise ScaffoldError(f"{path}: not a readable CSV file ({exc})") from exc
    if len(header) < 4 or len(set(header)) != len(header) or not cells:
        raise ScaffoldError(f"{path}: a CSV corpus needs a header with distinct names and at least 4 columns (a "
                            "dialogue id, a scenario, a speaker and a text per row, one turn per row), then rows")
    if path.suffix.lower() == ".tsv":
        raise ScaffoldError(f"{path}: dialc reads comma-separated CSV only; convert the TSV file")
    rows = [dict(zip(header, row, strict=False)) for row in cells if len(row) == len(header)]
    role, text_field = _speaker_and_text(path, rows, header)
    rest = [h for h in header if h not in (role, text_field)]
    ident = _pick("id", [h for h in rest if _groups_turns(rows, h)])
    if ident is None:
        raise ScaffoldError(f"{path}: no column groups the rows into dialogues (a dialogue id repeated on "
                            f"consecutive rows); columns: {', '.join(header)}")
    scenario = _scenario(path, _first_per_dialogue(rows, ident), [h for h in rest if h != ident
                                                                    and _constant_per_dialogue(rows, ident, h)])
    mapping = Mapping("csv", {"id": ident, "scenario": scenario, "role": role, "text": text_field})
    firsts = _first_per_dialogue(rows, ident)
    mapping.dialogues = len(firsts)
    mapping.labels.update(row[role] for row in rows if row[role].strip())
    mapping.scenarios.update(_text(row.get(scenario)) for row in firsts if _text(row.get(scenario)))
    return mapping


# ---- guessing fields -----------------------------------------------------------------------------------------
def _keys(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(k for k in row if isinstance(k, str)))
    return list(seen)


def _share(rows: list[dict[str, Any]], key: str, test: Any) -> float:
    return sum(1 for row in rows if test(row.get(key))) / max(len(rows), 1)


def _is_turn_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, dict) for t in value)


def _text(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return ""
    return str(value).strip() if isinstance(value, str | int | float) else ""


def _pick(kind: str, candidates: list[str]) -> str | None:
    """The candidate with a preferred name for `kind` (in order of preference), else the first."""
    lowered = {c.lower(): c for c in candidates}
    for name in PREFERRED[kind]:
        if name in lowered:
            return lowered[name]
    return candidates[0] if candidates else None


def _speaker_and_text(path: Path, rows: list[dict[str, Any]], keys: list[str]) -> tuple[str, str]:
    """The speaker field (short strings, few distinct values) and the text field (the longest strings)."""
    strings = {k: [r[k] for r in rows if isinstance(r.get(k), str) and r[k].strip()] for k in keys}
    strings = {k: v for k, v in strings.items() if len(v) >= 0.9 * len(rows)}
    if not strings:
        raise ScaffoldError(f"{path}: the turns have no text fields")
    text_field = max(strings, key=lambda k: (k.lower() in PREFERRED["text"], _mean_len(strings[k])))
    speakers = [k for k, v in strings.items() if k != text_field and 1 <= len(set(v)) <= MAX_ROLES
                and (len(set(v)) < len(v) or len(v) <= 2) and _mean_len(v) <= 40]
    speakers.sort(key=lambda k: len(set(strings[k])) < 2)  # two speakers or more first
    role = _pick("role", speakers)
    if role is None:
        raise ScaffoldError(f"{path}: no field names the speaker of each turn (a field with at most {MAX_ROLES} "
                            f"distinct short values, e.g. agent / customer); fields: {', '.join(keys)}")
    return role, text_field


def _mean_len(values: list[str]) -> float:
    return sum(len(v) for v in values) / max(len(values), 1)


def _identifier(path: Path, rows: list[dict[str, Any]], keys: list[str]) -> str:
    unique = [k for k in keys if _share(rows, k, lambda v: bool(_text(v))) == 1.0
              and len({_text(r[k]) for r in rows}) == len(rows)]
    ident = _pick("id", unique)
    if ident is None:
        raise ScaffoldError(f"{path}: no field holds a distinct id for every dialogue; fields: {', '.join(keys)}")
    return ident


def _scenario(path: Path, rows: list[dict[str, Any]], keys: list[str]) -> str:
    """A categorical field present in every dialogue: few distinct values, repeated."""
    def categorical(key: str) -> bool:
        values = [_text(r.get(key)) for r in rows]
        distinct = set(values)
        return all(values) and len(distinct) <= min(MAX_SCENARIOS, max(1, len(rows) // 2))

    scenario = _pick("scenario", [k for k in keys if categorical(k)])
    if scenario is None:
        raise ScaffoldError(f"{path}: no field gives each dialogue a scenario (a categorical field with at most "
                            f"{MAX_SCENARIOS} values, such as a topic); dialc needs one: add it to the corpus")
    return scenario


def _groups_turns(rows: list[dict[str, Any]], key: str) -> bool:
    """A dialogue-id column: every row has one, values repeat on consecutive rows and never come back later."""
    runs = [v for i, v in enumerate(r[key].strip() for r in rows) if i == 0 or v != rows[i - 1][key].strip()]
    return all(runs) and len(runs) < len(rows) and len(set(runs)) == len(runs)


def _constant_per_dialogue(rows: list[dict[str, Any]], ident: str, key: str) -> bool:
    seen: dict[str, str] = {}
    return all(seen.setdefault(r[ident], r[key]) == r[key] for r in rows)


def _first_per_dialogue(rows: list[dict[str, Any]], ident: str) -> list[dict[str, Any]]:
    firsts: dict[str, dict[str, Any]] = {}
    for row in rows:
        firsts.setdefault(row[ident], row)
    return list(firsts.values())


# ---- roles and scenarios ---------------------------------------------------------------------------------------
def role_names(labels: list[str]) -> dict[str, list[str]]:
    """Spec role → the raw speaker labels it stands for: agent-like and customer-like labels are recognised."""
    roles: dict[str, list[str]] = {}
    for label in labels:
        lowered = label.strip().lower()
        if any(word in lowered for word in AGENT_WORDS):
            name = "agent"
        elif any(word in lowered for word in CUSTOMER_WORDS):
            name = "customer"
        else:
            name = as_name(lowered, "speaker")
        roles.setdefault(name, []).append(label)
    return roles


def as_name(value: str, fallback: str) -> str:
    """A .dial NAME made from a value (`after sales` → after_sales)."""
    name = re.sub(r"\W+", "_", value.strip()).strip("_")
    if not name or name[0].isdigit():
        name = f"{fallback}_{name}" if name else fallback
    return f"{name}_" if name in KEYWORDS else name


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


# ---- writing the project ----------------------------------------------------------------------------------------
EXAMPLE_CORPUS = [
    {"id": "ex-1", "scenario": "question", "turns": [
        {"role": "customer", "text": "Hello, do you deliver on Saturdays?"},
        {"role": "agent", "text": "Yes, we deliver on Saturdays between 9 am and 1 pm at no extra cost."}]},
    {"id": "ex-2", "scenario": "complaint", "turns": [
        {"role": "customer", "text": "My order arrived with a broken handle."},
        {"role": "agent", "text": "I'm sorry about that. I have sent a replacement; it arrives on Tuesday."},
        {"role": "customer", "text": "Thank you, that is quick."}]},
    {"id": "ex-3", "scenario": "question", "turns": [
        {"role": "customer", "text": "Can I change the delivery address of order 1042?"},
        {"role": "agent", "text": "Yes, until it ships. What is the new address?"}]},
    {"id": "ex-4", "scenario": "complaint", "turns": [
        {"role": "customer", "text": "I was charged twice for the same order."},
        {"role": "agent", "text": "I can see both charges; the second one is refunded today and shows in 3 days."}]},
]


def init_project(name: str, corpus: Path | None = None, parent: Path | None = None) -> tuple[Path, Mapping]:
    """Create folder `name` (in `parent`, default the working directory) with a spec that validates; return it
    and the mapping its source uses."""
    project_name = Path(name).name
    if not project_name or project_name in (".", ".."):
        raise ScaffoldError(f"not a project name: {name!r}")
    target = (parent or Path.cwd()) / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another name or remove it")
    mapping = inspect_corpus(corpus) if corpus is not None else None
    pipeline = as_name(project_name.lower(), "project")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{project_name}.init-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)  # mkdtemp makes it private; the project folder is an ordinary one
    try:
        data = staging / "data"
        data.mkdir()
        if corpus is not None and mapping is not None:
            corpus_name = corpus.name
            shutil.copyfile(corpus, data / corpus_name)
        else:
            corpus_name = "dialogues.jsonl"
            (data / corpus_name).write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in EXAMPLE_CORPUS),
                                            encoding="utf-8")
            mapping = inspect_corpus(data / corpus_name)
        spec = staging / f"{project_name}.dial"
        spec.write_text(spec_text(pipeline, f"data/{corpus_name}", mapping, example=corpus is None), encoding="utf-8")
        (staging / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        (staging / "README.md").write_text(readme_text(project_name, corpus_name, mapping, corpus is None),
                                           encoding="utf-8")
        _check(spec)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, mapping


def _check(spec: Path) -> None:
    """The written spec formats canonically and validates without errors (else the guess is a dialc bug)."""
    from dialc.diagnostics import Diagnostics
    from dialc.formatter import format_module
    from dialc.frontend import parse_file, run_frontend

    diags = Diagnostics()
    module = parse_file(spec, diags)
    if module is not None and not diags.has_errors():
        original = spec.read_text(encoding="utf-8")
        spec.write_text(format_module(module, original), encoding="utf-8")
    front = run_frontend(spec, allow=[spec.parent])
    errors = [d for d in [*diags.items, *front.diags.items] if d.severity == "error"]
    if errors:
        shown = "; ".join(f"{d.code}: {d.message}" for d in errors[:3])
        raise ScaffoldError(f"the spec guessed from the corpus does not validate ({shown}); write the source "
                            "mapping by hand (see `source` in README)")


GITIGNORE = """\
# dialc run directories (records store, artifacts, reports): rebuilt by `dialc run`
runs/
*/runs/
# models and caches
__pycache__/
.venv/
"""


def spec_text(pipeline: str, corpus: str, m: Mapping, example: bool = False) -> str:
    """The spec: a source mapped as guessed, the scenarios seen, three tasks, sampling, labels, quality, export."""
    roles = role_names(sorted(m.labels, key=lambda label: -m.labels[label]))
    scenarios = {value: as_name(value, "scenario") for value in sorted(m.scenarios)}
    named = all(NAME_RE.match(v) and v not in KEYWORDS for v in scenarios) and len(scenarios) <= MAX_SCENARIOS
    origin = "an example corpus (replace data/dialogues.jsonl with yours)" if example else f"{corpus}"
    counted = f"{m.dialogues} dialogues" + (f" in its first {INSPECT_BYTES >> 20} MiB" if m.partial else "")
    lines = [
        f"// {pipeline}: scaffolded by `dialc init` from {origin}: {counted}, {len(m.scenarios)} scenario(s).",
        "// Check the guessed source mapping and roles, then: dialc validate, dialc run --dry-run, dialc run.",
        "",
        f"pipeline {pipeline} {{",
        "  seed = 42",
        "}",
        "",
        "// the embedded 135M model (CPU); point path at a local HF directory, a GGUF file or a served model",
        "model small {",
        '  path = "builtin:smollm2-135m-instruct"',
        "  temperature = 0.7",
        "  max_tokens = 160",
        "}",
        "",
        "source dialogues {",
        f"  path = {_quote(corpus)}",
        *([f"  format = {m.format}"] if m.format == "csv" else []),
        *[f"  {key} = field({_quote(value)})" for key, value in m.fields.items()],
        f"  roles = {_roles_value(roles)}",
        "  on_error = skip",
        "  pii_scrub = true",
        "}",
        "",
    ]
    if named:
        lines += ["scenarios {"]
        lines += [f"  {value} {_quote(f'{value} ({m.scenarios[value]} dialogues seen)')} weight 1"
                  for value in scenarios]
        lines += ["}", ""]
    else:
        lines += ["// the corpus's scenario values are not all plain names, so no `scenarios { }` taxonomy is "
                  "declared", ""]
    agent = "agent" if "agent" in roles else next(iter(roles))
    lines += [
        "task summarize_dialogue {",
        "  category = summarization",
        '  instruction = "Summarise the conversation in two or three sentences."',
        "  output = text(max = 400)",
        "}",
        "",
        "task next_reply {",
        "  category = reply_generation",
        f'  instruction = "Write the {agent}\'s next reply: helpful, specific and polite."',
        "  output = text(max = 300)",
        "}",
        "",
    ]
    if named and len(scenarios) >= 2:
        lines += [
            "task scenario_of {",
            "  category = classification",
            '  instruction = "Which of these scenarios is the conversation about? Answer with one label."',
            f"  output = choice([{', '.join(scenarios)}])",
            "}",
            "",
        ]
    balance = "[scenario, category]" if named else "[category]"
    tasks = 3 if named and len(scenarios) >= 2 else 2
    lines += [
        "sample prompts {",
        "  from = dialogues * tasks",
        f"  count = {max(1, min(24, m.dialogues * tasks))}",
        f"  balance = {balance}",
        "}",
        "",
        "label labels {",
        "  from = prompts",
        "  model = small",
        "}",
        "",
        "quality {",
        "  dimension valid    rule      { check = schema  gate = true }",
        "  dimension grounded grounding { min = 0.3 }",
        "  dimension novel    dedup     { threshold = 0.85  gate = true }",
        "  keep when score >= 0.4",
        "}",
        "",
        "export dataset {",
        "  formats = [chat_jsonl]",
        "}",
    ]
    return "\n".join(lines) + "\n"


def _roles_value(roles: dict[str, list[str]]) -> str:
    """`[agent, customer]` when every label is its own lower-case role name, else `{agent: ["Support"], …}`."""
    if all(labels == [role] for role, labels in roles.items()):
        return "[" + ", ".join(roles) + "]"
    return "{" + ", ".join(f"{role}: [{', '.join(map(_quote, labels))}]" for role, labels in roles.items()) + "}"


def readme_text(project: str, corpus: str, m: Mapping, example: bool) -> str:
    source = ("an example corpus of four dialogues: replace it with yours and adjust the `source` mapping"
              if example else f"a copy of the corpus it was made from ({m.format.upper()}, {m.dialogues} dialogues)")
    mapping = ", ".join(f"{k} ← `{v}`" for k, v in m.fields.items())
    return f"""# {project}

A dialc project scaffolded by `dialc init`.

* `{project}.dial`: the pipeline spec (source → tasks → sample → labels → quality → export).
* `data/{corpus}`: {source}.
* Guessed source mapping: {mapping}; speaker labels: {", ".join(sorted(m.labels))}.
* `runs/` (ignored by git): what `dialc run` writes.

```bash
dialc validate {project}.dial
dialc run {project}.dial --dry-run   # what would run, and its estimated cost
dialc run {project}.dial
```
"""

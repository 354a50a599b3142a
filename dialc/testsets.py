"""Gold test sets → their resolved mapping, their dialogues, and the checks that keep them out of training."""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dialc.diagnostics import Diagnostics, Note
from dialc.files import MAX_DATA_BYTES, open_text, read_text
from dialc.ir import IR, DeclIR, RefIR
from dialc.references import GoldTask, check_references
from dialc.schema import KINDS

MAPPING_FIELDS = ("id", "scenario", "turns", "role", "text")
SHOWN = 5  # leaked dialogues / reference problems named in a message; the rest are counted
# one token per CJK character, one per word elsewhere (as the runtime's ROUGE-L and dedup count them)
TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True)
class Mapping:
    """How a dialogue file is read: its format, field names, speaker labels and PII masking."""

    format: str
    fields: dict[str, str]
    roles: dict[str, list[str]]
    pii_scrub: bool


@dataclass(frozen=True)
class Dialogue:
    """A dialogue as the checks see it: its scenario and its turns' text joined."""

    id: str
    scenario: str
    text: str


def source_mapping(source: DeclIR) -> Mapping:
    f = source.fields
    fmt = f.get("format") or ("csv" if str(f.get("path", "")).lower().endswith(".csv") else "jsonl")
    defaults = KINDS["source"].fields
    return Mapping(format=fmt, fields={k: f.get(k, defaults[k].default) for k in MAPPING_FIELDS},
                   roles=f.get("roles") or {}, pii_scrub=bool(f.get("pii_scrub", False)))


def testset_mapping(ir: IR, testset: DeclIR) -> Mapping:
    """The test set's own fields, else those of its `like` source, else the source defaults."""
    f = testset.fields
    like = f.get("like")
    found = ir.find(like.name, ("source",)) if isinstance(like, RefIR) else []
    base = source_mapping(found[0]) if found else Mapping(
        format="csv" if str(f.get("path", "")).lower().endswith(".csv") else "jsonl",
        fields={k: KINDS["source"].fields[k].default for k in MAPPING_FIELDS}, roles={}, pii_scrub=False)
    return Mapping(format=f.get("format") or base.format,
                   fields={k: f.get(k, base.fields[k]) for k in MAPPING_FIELDS},
                   roles=f.get("roles") or base.roles,
                   pii_scrub=bool(f.get("pii_scrub", base.pii_scrub)))


def testset_tasks(ir: IR, testset: DeclIR) -> list[DeclIR]:
    """The declared tasks a test set answers: its `tasks`, else every declared task."""
    refs = testset.fields.get("tasks")
    if refs is None:
        return [t for t in ir.of_kind("task") if "output" in t.fields]
    return [t for ref in refs for t in ir.find(ref.name, ("task",)) if "output" in t.fields]


# ---- reading (light: json and csv only; malformed rows are the ingest step's business) --------
def read_dialogues(path: Path, mapping: Mapping) -> dict[str, Dialogue]:
    """Well-formed dialogues of a file by id, in file order; unreadable files give none."""
    try:
        return _read_csv(path, mapping) if mapping.format == "csv" else _read_jsonl(path, mapping)
    except (OSError, UnicodeDecodeError, csv.Error, RecursionError):
        return {}


def _read_jsonl(path: Path, mapping: Mapping) -> dict[str, Dialogue]:
    f = mapping.fields
    found: dict[str, Dialogue] = {}
    for line in read_text(path).splitlines():  # a regular file only, read with a bound
        try:
            obj = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get(f["turns"]), list):
            continue
        texts = [str(t.get(f["text"], "")) for t in obj[f["turns"]] if isinstance(t, dict)]
        ident = str(obj.get(f["id"], "")).strip()
        if ident:
            found.setdefault(ident, Dialogue(ident, str(obj.get(f["scenario"], "")).strip(), "\n".join(texts)))
    return found


def _read_csv(path: Path, mapping: Mapping) -> dict[str, Dialogue]:
    f = mapping.fields
    turns: dict[str, list[str]] = {}
    scenarios: dict[str, str] = {}
    with open_text(path, MAX_DATA_BYTES) as handle:  # a regular file only, of a bounded size
        for row in csv.DictReader(handle):
            ident = str(row.get(f["id"]) or "").strip()
            if ident:
                turns.setdefault(ident, []).append(str(row.get(f["text"]) or ""))
                scenarios.setdefault(ident, str(row.get(f["scenario"]) or "").strip())
    return {i: Dialogue(i, scenarios[i], "\n".join(t)) for i, t in turns.items()}


# ---- near-duplicates --------------------------------------------------------------------------
def shingles(text: str) -> set[str]:
    """Token bigrams of the case- and width-folded text (one token per CJK character or word)."""
    tokens = TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())
    return {f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)} or set(tokens)


def near_copies(tests: dict[str, str], train: dict[str, str], threshold: float) -> list[tuple[str, str, float]]:
    """(test id, most similar training id, Jaccard) for each test text at least `threshold` similar to a
    training text; exact, through an inverted index of the training shingles."""
    train_sets = {i: shingles(t) for i, t in train.items()}
    index: dict[str, list[str]] = {}
    for ident, grams in train_sets.items():
        for gram in grams:
            index.setdefault(gram, []).append(ident)
    found = []
    for ident, text in tests.items():
        grams = shingles(text)
        shared = Counter(other for gram in grams for other in index.get(gram, ()))
        scored = [(n / (len(grams) + len(train_sets[other]) - n), other) for other, n in shared.items()]
        best = max(scored, default=None)
        if best is not None and best[0] >= threshold:
            found.append((ident, best[1], best[0]))
    return found


# ---- checks -----------------------------------------------------------------------------------
def pass_testsets(ir: IR, diags: Diagnostics) -> None:
    """A test set needs roles (its own or its `like` source's) and at least one task to answer."""
    for testset in ir.of_kind("testset"):
        if not testset_mapping(ir, testset).roles and "roles" not in testset.field_spans:
            diags.report("missing-field", f"testset '{testset.name}' needs 'roles' (or `like = SOURCE` to reuse "
                         "a source's mapping)", testset.name_span)
        if not testset_tasks(ir, testset) and "tasks" not in testset.field_spans:
            diags.report("missing-field", f"testset '{testset.name}' has no task to answer: declare tasks",
                         testset.name_span)


def pass_testset_files(ir: IR, diags: Diagnostics) -> None:
    """The test set's files exist, none of its dialogues is in a training source, its references fit."""
    base = Path(ir.spec_dir)
    for testset in ir.of_kind("testset"):
        missing = [k for k in ("path", "references")
                   if isinstance(testset.fields.get(k), str) and not (base / testset.fields[k]).is_file()]
        for key in missing:
            diags.report("missing-file", f"testset {key} not found: {testset.fields[key]} (relative to "
                         f"{ir.spec_dir or '.'})", testset.span_of(key))
        if "path" in missing or "path" not in testset.fields:
            continue
        dialogues = read_dialogues(base / testset.fields["path"], testset_mapping(ir, testset))
        for source in ir.of_kind("source"):
            _check_leak(ir, testset, dialogues, source, diags)
        if "references" in testset.fields and "references" not in missing:
            _check_answers(ir, testset, dialogues, diags)


def _check_leak(ir: IR, testset: DeclIR, dialogues: dict[str, Dialogue], source: DeclIR,
                diags: Diagnostics) -> None:
    base = Path(ir.spec_dir)
    path = source.fields.get("path")
    if not isinstance(path, str) or not (base / path).is_file():
        return
    where = [Note(f"source {source.name} declared here", source.span_of("path"))]
    if (base / path).resolve() == (base / testset.fields["path"]).resolve():
        diags.report("testset-leak", f"testset '{testset.name}' reads the training file of source "
                     f"'{source.name}' ({path}): a test set must hold dialogues never trained on",
                     testset.span_of("path"), notes=where)
        return
    train = read_dialogues(base / path, source_mapping(source))
    same = [f'"{i}" (same id)' for i in dialogues if i in train]
    rest = {i: d.text for i, d in dialogues.items() if i not in train}
    threshold = testset.fields.get("near_duplicate", KINDS["testset"].fields["near_duplicate"].default)
    copies = near_copies(rest, {i: d.text for i, d in train.items()}, threshold)
    leaked = same + [f'"{i}" ≈ "{j}" (near-duplicate, similarity {s:.2f})' for i, j, s in copies]
    if leaked:
        more = f", and {len(leaked) - SHOWN} more" if len(leaked) > SHOWN else ""
        diags.report("testset-leak", f"testset '{testset.name}' shares {len(leaked)} dialogue(s) with training "
                     f"source '{source.name}': {', '.join(leaked[:SHOWN])}{more}; remove them from the test set "
                     "(a model cannot be tested on what it trained on)", testset.span_of("path"), notes=where)


def _check_answers(ir: IR, testset: DeclIR, dialogues: dict[str, Dialogue], diags: Diagnostics) -> None:
    tasks = [GoldTask(t.name, t.fields["output"], [r.name for r in t.fields.get("scenarios") or []])
             for t in testset_tasks(ir, testset)]
    path = Path(ir.spec_dir) / testset.fields["references"]
    scenarios = {i: d.scenario for i, d in dialogues.items()}
    declared = frozenset(t.name for t in ir.of_kind("task"))
    problems = check_references(path, testset.fields["references"], scenarios, tasks, declared)
    for index, problem in enumerate(problems[:SHOWN]):
        more = f" (and {len(problems) - SHOWN} more problems)" if index == SHOWN - 1 and len(problems) > SHOWN else ""
        diags.report("bad-reference", f"testset '{testset.name}': {problem}{more}", testset.span_of("references"))


"""A stored record that extends an input record refers to it (`{"@": [input step id, key], …own fields}`)
instead of copying it; reading gives the whole record: the input record (itself resolved) updated with
the record's own fields. Only the outputs listed in the store's refs table are read this way, so a
user's data that happens to hold an "@" field is never taken for a reference."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from dialc_runtime.engine.canonical import load_record
from dialc_runtime.errors import StoreDamaged

if TYPE_CHECKING:
    from dialc_runtime.engine.store import Store

REF = "@"  # sorts before every letter: a stored reference is the first field of its record's JSON


def derived(input_id: str, key: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The stored form of a record made of input record `input_id:key` plus `fields`."""
    if REF in fields:
        raise ValueError(f"a record that refers to its input cannot have its own {REF!r} field")
    return {REF: [input_id, key], **fields}


def _reference(record: Any) -> tuple[str, str] | None:
    ref = record.get(REF) if isinstance(record, dict) else None
    return (str(ref[0]), str(ref[1])) if isinstance(ref, list) and len(ref) == 2 else None


def resolve_page(store: Store, step_key: str, rows: list[tuple[str, str]]) -> Iterator[tuple[str, Any]]:
    """(key, whole record) of a page of stored rows of one output; the inputs are read once per page."""
    records = [(rkey, load_record(data)) for rkey, data in rows]
    targets = store.ref_targets(step_key) if records else {}
    if not targets:
        yield from records
        return
    wanted: dict[str, list[str]] = {}
    for _, record in records:
        ref = _reference(record)
        if ref is not None:
            wanted.setdefault(ref[0], []).append(ref[1])
    bases = {input_id: _bases(store, step_key, targets, input_id, keys) for input_id, keys in wanted.items()}
    for rkey, record in records:
        ref = _reference(record)
        if ref is None:
            yield rkey, record
            continue
        base = bases[ref[0]].get(ref[1])
        if base is None:
            raise StoreDamaged(f"record {rkey} of output {step_key[:12]} refers to {ref[0]}:{ref[1]}, which the "
                               "store no longer holds: run `dialc run SPEC --rebuild-store`")
        yield rkey, {**base, **{k: v for k, v in record.items() if k != REF}}


def _bases(store: Store, step_key: str, targets: dict[str, str], input_id: str, keys: list[str]) -> dict[str, Any]:
    if input_id not in targets:
        raise StoreDamaged(f"output {step_key[:12]} refers to records of {input_id}, an input it does not list")
    return store.records_by_key(targets[input_id], keys)


def resolve_one(store: Store, step_key: str, rkey: str, data: str) -> Any:
    """One stored record, whole."""
    return next(resolve_page(store, step_key, [(rkey, data)]))[1]

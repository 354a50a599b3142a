"""A step's emitted records → batched durable commits, and the keys an earlier attempt already wrote.

One SQLite transaction per record caps a step at a few thousand records/s; one per batch of
`BATCH_ROWS` records (or per `BATCH_SECONDS`, so that a slow step's records are not left waiting in
memory) costs far less. A crash loses at most the batch not yet committed, which the next attempt
makes again; `flush()` is called by the engine when run() ends, whatever way it ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dialc_runtime.engine.store import Store

BATCH_ROWS = 500  # records per transaction
BATCH_SECONDS = 0.2  # at most this long between a record's emit and its commit (when records keep coming)


class Batcher:
    """Rows of one step attempt waiting to be committed together."""

    def __init__(self, store: Store, step_key: str, step_id: str) -> None:
        self._store, self._key, self._id = store, step_key, step_id
        self._rows: list[tuple[str, str, bool]] = []
        self._since = 0.0

    def add(self, rkey: str, data: str, replace: bool) -> None:
        if not self._rows:
            self._since = time.monotonic()
        self._rows.append((rkey, data, replace))
        if len(self._rows) >= BATCH_ROWS or time.monotonic() - self._since >= BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Commit the waiting rows in one transaction (nothing to do when none wait)."""
        rows, self._rows = self._rows, []
        if rows:
            self._store.put_many(self._key, self._id, rows)


class EmittedKeys:
    """The keys one step attempt has emitted, to refuse a repeated one. Steps emit their keys in increasing
    order almost always: while they come so, a new key is larger than all before it (no look-up needed) and
    the keys are held as joined text, a few bytes each; the first key out of order turns them into a set."""

    SEP = "\0"
    CHUNK = 4096  # keys joined into one string at a time

    def __init__(self) -> None:
        self._last = ""
        self._chunks: list[str] = []
        self._pending: list[str] = []
        self._set: set[str] | None = None

    def add(self, key: str) -> bool:
        """Record `key`; False (and nothing recorded) when it was emitted already."""
        if self._set is None and key > self._last and self.SEP not in key:
            self._last = key
            self._pending.append(key)
            if len(self._pending) >= self.CHUNK:
                self._chunks.append(self.SEP.join(self._pending))
                self._pending = []
            return True
        if self._set is None:
            self._set = {k for chunk in self._chunks for k in chunk.split(self.SEP)} | set(self._pending)
            self._chunks, self._pending = [], []
        if key in self._set:
            return False
        self._set.add(key)
        return True


class Done(Mapping[str, Any]):
    """The records an interrupted earlier attempt of the step wrote: their keys are held in memory, the
    records themselves are read from the store when asked for (`done[key]`, `done.values()` streams)."""

    def __init__(self, store: Store, step_key: str) -> None:
        self._store, self._key = store, step_key
        self._keys = set(store.keys(step_key))

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._keys))

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._store.records_by_key(self._key, [key])[key]

    def items(self) -> Iterator[tuple[str, Any]]:  # type: ignore[override]
        """(key, record) in key order, streamed from the store."""
        if self._keys:
            yield from ((k, r) for k, r in self._store.records(self._key) if k in self._keys)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        return (record for _, record in self.items())

"""MinHash sketches → near-duplicate candidates, from an LSH index kept in a temporary SQLite file.

The candidates are those of datasketch's MinHashLSH with the same (bands, rows): two sketches collide when
one band of their hash values is equal. Each band is kept as a 64-bit digest of (scope, band number, band
values), with the first text that gave it: memory stays flat however many texts are indexed (a digest
collision would only add a candidate, which the exact Jaccard similarity then judges).
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE bands (band INTEGER NOT NULL, original INTEGER NOT NULL);
CREATE INDEX bands_by_band ON bands (band);
CREATE TABLE originals (n INTEGER PRIMARY KEY, id TEXT NOT NULL, text TEXT NOT NULL);
CREATE TABLE exact (fingerprint TEXT PRIMARY KEY, id TEXT NOT NULL) WITHOUT ROWID;
"""


def _signed64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


class DiskIndex:
    """Originals (id, text) by position, their band digests, and exact fingerprints, in one temporary file."""

    def __init__(self, bands: int, rows: int) -> None:
        self.ranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
        self._dir = tempfile.TemporaryDirectory(prefix="dialc-dedup-")
        self.db = sqlite3.connect(Path(self._dir.name) / "lsh.sqlite", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self.db.executescript(_SCHEMA)
        self.db.execute("BEGIN")

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def __enter__(self) -> DiskIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def band_digests(self, scope: str, hashvalues: Any) -> list[int]:
        prefix = scope.encode() + b"\0"
        return [_signed64(prefix + i.to_bytes(2, "big") + hashvalues[a:b].tobytes())
                for i, (a, b) in enumerate(self.ranges)]

    def exact(self, fingerprint: str) -> str | None:
        row = self.db.execute("SELECT id FROM exact WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return None if row is None else str(row[0])

    def candidates(self, digests: list[int]) -> Iterator[tuple[str, str]]:
        """(id, text) of every original sharing a band, in the order they were indexed."""
        marks = ",".join("?" * len(digests))
        sql = ("SELECT id, text FROM originals WHERE n IN "
               f"(SELECT original FROM bands WHERE band IN ({marks})) ORDER BY n")
        yield from self.db.execute(sql, digests).fetchall()

    def insert(self, n: int, item_id: str, text: str, fingerprint: str, digests: list[int]) -> None:
        self.db.execute("INSERT INTO originals VALUES (?, ?, ?)", (n, item_id, text))
        self.db.execute("INSERT OR IGNORE INTO exact VALUES (?, ?)", (fingerprint, item_id))
        self.db.executemany("INSERT INTO bands VALUES (?, ?)", [(d, n) for d in digests])

"""Step, code version, inputs, files → cache key; stored records and files → output digest."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from dialc.plan import digest, resolve_path
from dialc_runtime.engine.layout import META_DIR
from dialc_runtime.errors import StoreDamaged

if TYPE_CHECKING:
    from dialc.plan import Plan, Step
    from dialc_runtime.engine.store import Store

_CHUNK = 1 << 20  # bytes read at a time when hashing files
MISSING = "missing"  # digest of a listed file that does not exist (the step will say why)


def effective_seed(step: Step, plan: Plan) -> int:
    """The step's own `seed` param, else the pipeline seed; part of the key either way."""
    seed = getattr(step.params, "seed", None)
    if seed is None:
        seed = plan.settings.get("seed", 0)
    return int(seed)


def step_key(
    step: Step,
    version: str,
    seed: int,
    input_digests: list[str],
    file_digests: list[tuple[str, str]],
) -> str:
    """Same kind, params, code, seed, input outputs and file contents → same key → reuse.

    The step's name is left out on purpose: renaming a step keeps its cached output.
    """
    return digest(
        {
            "kind": step.kind,
            "params": step.params_json(cache_key=True),
            "version": version,
            "seed": seed,
            "inputs": input_digests,  # in the step's input order
            "files": file_digests,
        }
    )


def listed_files(step: Step) -> list[str]:
    """The files a step reads, as listed by the compiler in `params.files`."""
    return [str(f) for f in step.params.files]


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's (relative path, file digest) list."""
    if path.is_dir():
        return digest(tree_digests(path))
    if not path.is_file():
        return MISSING
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digests(root: Path) -> list[tuple[str, str]]:
    """(posix relative path, sha256) of every file under root, sorted by path."""
    if not root.is_dir():
        return []
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    return [(rel, file_digest(p)) for rel, p in files]


class FileDigests:
    """Digests of the listed files, each file hashed once per run; the key holds each file's name as the
    plan spells it (relative to the spec's folder, `base`), never a path relative to the working directory."""

    def __init__(self, base: str | Path = ".") -> None:
        self._memo: dict[str, str] = {}
        self.base = base

    def __call__(self, step: Step) -> list[tuple[str, str]]:
        out = []
        for name in listed_files(step):
            if name not in self._memo:
                self._memo[name] = file_digest(Path(resolve_path(name, self.base)))
            out.append((name, self._memo[name]))
        return sorted(out)


def output_digest(store: Store, key: str) -> tuple[str, int]:
    """Digest of a step's output (records in key order, then out dir files) and record count."""
    h = hashlib.sha256()
    count = 0
    for rkey, data in store.rows(key):
        r, d = rkey.encode(), data.encode()
        # length-prefixed so no two different row lists hash alike
        h.update(b"R%d:%s%d:%s" % (len(r), r, len(d), d))
        count += 1
    for rel, fd in tree_digests(store.artifact_dir(key)):
        if META_DIR in rel.split("/"):
            continue  # timings and other metadata of how it was made: not part of the output
        p = rel.encode()
        h.update(b"F%d:%s%s" % (len(p), p, fd.encode()))
    return h.hexdigest(), count


def verify(store: Store, key: str) -> bool:
    """True when a completed output is still exactly what was recorded (no tampered row or file)."""
    done = store.completed(key)
    if done is None:
        return False
    try:
        found, count = output_digest(store, key)
    except StoreDamaged:  # a stored row that no longer reads (engine/store.py unpack): not the recorded output
        return False
    return found == done.digest and count == done.records

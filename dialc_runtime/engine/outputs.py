"""Current step outputs → `outputs/<name>`: a relative link per export and fine-tune, re-pointed after every run.

The outputs of a run live in hash-named folders (`artifacts/<cache key>/`); `outputs/<name>` names the one
that is current for the spec's `export NAME` or `finetune NAME`, so `outputs/dataset/train.jsonl` and
`outputs/domain/adapter` always mean the data and the adapter of the spec as it last ran. Each link is
replaced in one rename (a reader sees the old target or the new one), and a name whose step has no
current output (it failed, or the spec changed and it has not run) loses its link instead of keeping a
stale one. `outputs/index.json` lists them for programs and stands in for the links where the file system
cannot hold symbolic links. Names and places come from engine/layout.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dialc_runtime.engine.layout import META_DIR, RunLayout
from dialc_runtime.engine.results import write_atomic

if TYPE_CHECKING:
    from dialc.plan import Plan, Step
    from dialc_runtime.engine.executor import Resolver
    from dialc_runtime.engine.registry import Registry
    from dialc_runtime.engine.store import Store

INDEX_VERSION = 1
NAMED_KINDS = ("export", "finetune")  # step kinds whose output gets a name under outputs/
MODEL_ENTRIES = ("adapter", "model")  # what a fine-tune's folder holds that a user opens (LoRA, full weights)


@dataclass(frozen=True)
class NamedOutput:
    """One name under outputs/ and the step output it stands for."""

    name: str  # the folder under outputs/: the declared name (the step id where an export and a fine-tune share it)
    step_id: str
    kind: str
    key: str  # the cache key of the output it points at
    entries: tuple[str, ...]  # what it holds that a user opens: train.jsonl …, adapter
    linked: bool = True  # False where the file system took no link: only the index names it

    @property
    def target(self) -> str:
        """The output folder, relative to the run directory (as the index records it)."""
        return RunLayout(Path()).artifact_dir(self.key).as_posix()


def output_names(plan: Plan) -> dict[str, Step]:
    """Folder name → step, for every export and fine-tune of the plan; a name both declare gets the step id."""
    steps = [s for s in plan.steps if s.kind in NAMED_KINDS]
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.name] = counts.get(step.name, 0) + 1
    return {(step.name if counts[step.name] == 1 else step.id): step for step in steps}


def current_outputs(plan: Plan, layout: RunLayout, key_of: Callable[[str], str | None]) -> list[NamedOutput]:
    """The named outputs of the plan that have a complete output for their current key (`key_of`)."""
    found = []
    for name, step in output_names(plan).items():
        key = key_of(step.id)
        folder = layout.artifact_dir(key) if key else None
        if key is None or folder is None or not folder.is_dir() or not _safe_name(name):
            continue
        found.append(NamedOutput(name, step.id, step.kind, key, _entries(step.kind, folder)))
    return found


def _entries(kind: str, folder: Path) -> tuple[str, ...]:
    names = sorted(p.name for p in folder.iterdir() if p.name != META_DIR and not p.name.startswith("."))
    return tuple(n for n in names if n in MODEL_ENTRIES) if kind == "finetune" else tuple(names)


def _safe_name(name: str) -> bool:
    """A name that is one path component of its own (declaration names are identifiers; this is a guard)."""
    return bool(name) and name not in (".", "..") and not name.startswith(".") and "/" not in name and "\\" not in name


def write_outputs(layout: RunLayout, outputs: list[NamedOutput]) -> list[NamedOutput]:
    """Point outputs/<name> at each output (one rename each), rewrite the index, drop every other link.

    Returns the outputs as written (`linked` False where no link could be made)."""
    root = layout.outputs
    if not outputs and not root.is_dir():
        return []
    root.mkdir(parents=True, exist_ok=True)
    written = [_point(layout, output) for output in outputs]
    index = {"version": INDEX_VERSION, "outputs": [{**asdict(o), "target": o.target} for o in written]}
    write_atomic(layout.outputs_index, json.dumps(index, indent=2, sort_keys=True) + "\n")
    _drop_others(layout, {o.name for o in written if o.linked})
    if not written:
        layout.outputs_index.unlink(missing_ok=True)
        _remove_if_empty(root)
    return written


def _point(layout: RunLayout, output: NamedOutput) -> NamedOutput:
    """outputs/<name> → ../artifacts/<key>, replaced in one rename; unlinked (index only) where links fail."""
    link = layout.named_output(output.name)
    target = os.path.relpath(layout.artifact_dir(output.key), layout.outputs)
    if link.is_symlink() and os.readlink(link) == target:
        return output
    if link.exists() and not link.is_symlink():  # a real file or folder someone put there: never ours to delete
        return replace(output, linked=False)
    staged = link.with_name(f".{output.name}.{os.getpid()}.tmp")
    staged.unlink(missing_ok=True)
    try:
        os.symlink(target, staged, target_is_directory=True)
    except (OSError, NotImplementedError):  # no links here (Windows without the privilege, some mounts)
        link.unlink(missing_ok=True)  # an old link would be stale: the index alone names the output
        return replace(output, linked=False)
    os.replace(staged, link)
    return output


def _drop_others(layout: RunLayout, keep: set[str]) -> None:
    """Remove every link under outputs/ that is not current, and links staged by a run that was killed."""
    for path in layout.outputs.iterdir():
        if path.is_symlink() and path.name not in keep:
            path.unlink(missing_ok=True)


def _remove_if_empty(root: Path) -> None:
    with suppress(OSError):  # something else lives there: leave it
        root.rmdir()


def read_outputs(run_dir: Path) -> list[NamedOutput]:
    """The named outputs the last run (or clean) wrote, from outputs/index.json ([] when there are none)."""
    try:
        index = json.loads(RunLayout(Path(run_dir)).outputs_index.read_text(encoding="utf-8"))
        rows = index["outputs"]
        return [NamedOutput(str(r["name"]), str(r["step_id"]), str(r["kind"]), str(r["key"]),
                            tuple(str(e) for e in r.get("entries", ())), bool(r.get("linked", True)))
                for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def refresh_outputs(plan: Plan, store: Store, registry: Registry, known: Resolver | None = None) -> list[NamedOutput]:
    """Re-point outputs/ at the plan's current outputs as the store holds them. `known`: the run's resolver,
    whose digests (ok, cached, or None for a step that failed) are reused, so nothing is hashed twice."""
    from dialc_runtime.engine.executor import Resolver  # the executor imports this module

    resolver = Resolver(plan, store, registry, check=False)
    if known is not None:
        resolver.digests.update(known.digests)
        resolver.keys.update({k: v for k, v in known.keys.items() if v})
        resolver.files = known.files

    def key_of(step_id: str) -> str | None:
        return resolver.keys.get(step_id) if resolver.output(step_id) is not None else None

    return write_outputs(store.layout, current_outputs(plan, store.layout, key_of))


def publish_outputs(plan: Plan, store: Store, registry: Registry, known: Resolver | None,
                    warn: Callable[[str, str], None]) -> None:
    """refresh_outputs at the end of a run: a failure to write a link is a warning, never a failed run."""
    try:
        refresh_outputs(plan, store, registry, known)
    except Exception as exc:  # noqa: BLE001 - the run's results are written already; say what went wrong
        warn("outputs", f"could not update {store.layout.outputs}: {type(exc).__name__}: {exc}")


def output_lines(run_dir: Path, outputs: Iterable[NamedOutput], base: Path | None = None) -> list[str]:
    """One line per named output, with the path a user opens (relative to `base`, the working directory)."""
    layout = RunLayout(Path(run_dir))
    lines = []
    for o in outputs:
        folder = layout.named_output(o.name) if o.linked else layout.run_dir / o.target
        where = _shown(folder, base)
        if o.kind == "finetune":
            shown = ", ".join(f"{where}/{e}" for e in o.entries) or f"{where}/"
        else:
            shown = f"{where}/ ({', '.join(o.entries)})" if o.entries else f"{where}/"
        lines.append(f"  {o.kind} {o.step_id.split('.', 1)[-1]}: {shown}")
    return lines


def _shown(path: Path, base: Path | None) -> str:
    base = Path.cwd() if base is None else base
    try:
        return Path(os.path.relpath(path, base)).as_posix() if path.is_absolute() else path.as_posix()
    except ValueError:  # another drive (Windows)
        return str(path)



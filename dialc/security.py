"""A spec → what it may read and write, and where an API key may go (README: "Security model").

Reads stay inside the project: the folder holding the spec, or its nearest version-control root (the first
folder above it with .git, .hg, .svn, .jj, .bzr or _darcs, or a `.dialc-root` file where there is no version
control), plus any folder given with `--allow-path DIR`.
An include, source, test set, reference or suite file outside it is refused before a byte is read (a spec
from elsewhere cannot make `dialc validate` print lines of /etc/shadow or a .env file). Model paths are
exempt: a model directory is commonly kept in a shared cache, and its contents are loaded, never printed.
Outputs (`pipeline.output`, `evolve.review`) outside the project are allowed, with a warning that says where.
An API key goes only to its model's server, and never in clear (plain http) to another machine unless the
model says `allow_insecure = true`.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

VCS_MARKERS = (".git", ".hg", ".svn", ".jj", ".bzr", "_darcs")
ROOT_MARKER = ".dialc-root"  # an (empty) file marking a project root where there is no version control


def real(path: Path | str) -> Path:
    """The absolute path with symlinks resolved as far as they resolve (a loop stays as written)."""
    return Path(os.path.realpath(path))


def project_root(spec: Path) -> Path:
    """The nearest folder from the spec's own upwards that holds a VCS marker (or a .dialc-root file, for
    a copy without version control), else the spec's folder."""
    start = real(spec).parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in (*VCS_MARKERS, ROOT_MARKER)):
            return folder
    return start


@dataclass(frozen=True)
class PathPolicy:
    """The folders a spec's reads must stay inside (real paths)."""

    roots: tuple[Path, ...]

    @classmethod
    def for_spec(cls, spec: Path, allow: Sequence[Path | str] = ()) -> PathPolicy:
        return cls((project_root(spec), *(real(Path(a)) for a in allow)))

    def allows(self, path: Path | str) -> bool:
        target = real(path)
        return any(target == root or target.is_relative_to(root) for root in self.roots)

    def outside(self, path: Path | str, what: str) -> str:
        """The message for a read outside every root."""
        return (f"{what} {path} is outside the project ({self.roots[0]}): dialc reads only inside the spec's "
                "folder or its version-control root; widen it with --allow-path DIR")


_POLICY: ContextVar[PathPolicy | None] = ContextVar("dialc_read_policy", default=None)
_ALLOWED: list[Path] = []  # --allow-path folders of this command line
ALLOW_ENV = "DIALC_ALLOW_PATH"  # more folders, separated as in PATH


def allow_paths(paths: Sequence[Path | str] | None) -> None:
    """The command line's --allow-path folders (for every spec this process checks)."""
    _ALLOWED[:] = [Path(p) for p in paths or ()]


def allowed_paths() -> list[Path]:
    """--allow-path folders and those of $DIALC_ALLOW_PATH."""
    extra = [Path(p) for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p]
    return [*_ALLOWED, *extra]


@contextmanager
def reading_policy(policy: PathPolicy | None) -> Iterator[None]:
    """Every read through dialc.files within the block is checked against `policy` (None: no check)."""
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


def current_policy() -> PathPolicy | None:
    return _POLICY.get()


def refused_read(path: Path | str, shown: str, what: str = "file") -> OSError | None:
    """The error for reading `path` under the current policy, or None when it may be read."""
    policy = _POLICY.get()
    if policy is None or policy.allows(path):
        return None
    return PermissionError(errno.EACCES, policy.outside(shown, what))


def is_loopback(url: str) -> bool:
    """A server on this machine (localhost, 127.0.0.0/8, ::1)."""
    from urllib.parse import urlsplit  # here: `dialc validate` imports this module on its fast path

    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def insecure_key_problem(base_url: str | None, api_key_env: str | None, allow_insecure: bool) -> str | None:
    """Why a key must not be sent to this URL (plain http to another machine), or None."""
    if not api_key_env or allow_insecure or not base_url:
        return None
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    if url.scheme != "http" or is_loopback(base_url):
        return None
    return (f"the API key in ${api_key_env} would be sent in clear (plain http) to {url.hostname}: use https, "
            "or set allow_insecure = true on the model if this network is trusted")

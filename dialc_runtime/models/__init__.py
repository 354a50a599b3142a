"""Model backends: batch-first generation and scoring behind one interface (see base.py).

`get_backend(model_cfg)` builds the backend named by `model_cfg["backend"]` once per process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dialc_runtime.models.base import Backend

# Settings every request carries itself (GenRequest fields) or that only name the model in the
# spec: they do not make a different backend, so steps that differ only in them share one.
REQUEST_FIELDS = frozenset({"name", "temperature", "top_p", "max_tokens", "seed"})


def _transformers(model_cfg: dict[str, Any]) -> Backend:
    from dialc_runtime.models.transformers_backend import TransformersBackend  # heavy: torch

    return TransformersBackend(model_cfg)


def _openai(model_cfg: dict[str, Any]) -> Backend:
    from dialc_runtime.models.openai_backend import OpenAIBackend  # an HTTP client, no torch

    return OpenAIBackend(model_cfg)


def _vllm(model_cfg: dict[str, Any]) -> Backend:
    from dialc_runtime.errors import StepFailed

    raise StepFailed(f"model '{model_cfg.get('name')}' has backend = vllm, which runs only under `dialc run --engine "
                     "ray` (vLLM engines through ray.data.llm, engine/ray_llm.py), not in this process")


# backend name (the `backend =` of a model declaration) → constructor taking the model config
BACKENDS: dict[str, Callable[[dict[str, Any]], Backend]] = {
    "transformers": _transformers,
    "openai": _openai,
    "vllm": _vllm,
}

_INSTANCES: dict[tuple[str, str], Backend] = {}


def get_backend(model_cfg: dict[str, Any]) -> Backend:
    """The shared backend for a model config (built on first use, then reused in this process).

    Instances are keyed by backend and the backend-level settings (path, device, batch_size,
    retries …); the transformers backend also shares loaded weights across instances per path.
    """
    kind = str(model_cfg.get("backend", "transformers"))
    if kind not in BACKENDS:
        raise ValueError(f"unknown model backend '{kind}' (known: {', '.join(sorted(BACKENDS))})")
    settings = {k: v for k, v in model_cfg.items() if k not in REQUEST_FIELDS}
    key = (kind, json.dumps(settings, sort_keys=True, default=str))
    if key not in _INSTANCES:
        _INSTANCES[key] = BACKENDS[kind](model_cfg)
    return _INSTANCES[key]


def clear_backends() -> None:
    """Forget the shared instances (tests; freeing a model's memory)."""
    _INSTANCES.clear()

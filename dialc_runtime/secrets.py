"""API keys → redacted out of every message dialc prints or stores; where each key is sent.

A key is read from the environment variable a model's `api_key_env` names, and goes nowhere but the
Authorization header of requests to that model's server. A server may echo it in an error text (a 401
repeating the header); every message is redacted before it is printed or stored (run_results.json,
report.html, record errors): the key itself, and any `Authorization:` or `Bearer` value, become
[REDACTED]. Keys are registered when a run starts (every model of the plan) and when a backend is made.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

REDACTED = "[REDACTED]"
MIN_SECRET = 4  # shorter values are not redacted (they would blank out ordinary words)
_known: set[str] = set()
_HEADER = re.compile(r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',;}]+")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{4,}")


def register(secret: str | None) -> None:
    """Redact this value from now on (an API key)."""
    if secret and len(secret) >= MIN_SECRET and secret != "EMPTY":
        _known.add(secret)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    """The text with every known key, and every Authorization or Bearer value, replaced by [REDACTED]."""
    for secret in sorted({*_known, *(s for s in extra if s and len(s) >= MIN_SECRET)}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _HEADER.sub(lambda m: m.group(1) + REDACTED, text)
    return _BEARER.sub(lambda m: m.group(1) + REDACTED, text)


def redact_value(value: Any) -> Any:
    """Strings redacted all through a JSON-like value (dicts, lists)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def plan_models(plan: Any) -> list[Any]:
    """Every ModelSpec in a plan's step params (nested ones included), in order, each config once."""
    from pydantic import BaseModel

    from dialc.plan import ModelSpec

    found: dict[str, Any] = {}

    def walk(value: Any) -> None:
        if isinstance(value, ModelSpec):
            found.setdefault(value.model_dump_json(), value)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))

    for step in plan.steps:
        walk(step.params)
    return list(found.values())


def register_plan_keys(plan: Any) -> None:
    """Register the key of every model of the plan that names one (so no message can show it)."""
    for model in plan_models(plan):
        if model.api_key_env:
            register(os.environ.get(model.api_key_env))


def key_destinations(plan: Any) -> list[str]:
    """'the API key in $X is sent to host (https)' for each model that sends one: said at run start."""
    lines = []
    for model in plan_models(plan):
        if model.backend == "openai" and model.api_key_env:
            url = urlsplit(model.base_url or "http://127.0.0.1:8000/v1")
            line = (f"model {model.name}: the API key in ${model.api_key_env} is sent to {url.hostname}"
                    f"{':' + str(url.port) if url.port else ''} ({url.scheme})")
            if line not in lines:
                lines.append(line)
    return lines

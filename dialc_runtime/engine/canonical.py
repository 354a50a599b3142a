"""Records ↔ their stored (and digested) form: compact canonical JSON, by orjson.

The form is the one `json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))`
gives, with two differences orjson makes and that never change a value: a float below 1e-4 is written
`1e-5`, not `1e-05`; a NaN or infinite float (not JSON) is written `null`. What orjson cannot encode
(an integer past 64 bits, a str with a lone surrogate, a type it does not know) goes through `json`.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def record_json(record: Any) -> str:
    """The stored (and digested) form of a record: compact JSON, keys sorted."""
    try:
        return orjson.dumps(record, option=_OPTIONS).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def load_record(data: str | bytes) -> Any:
    """A stored record back (records stored by older versions may hold NaN, which only `json` reads)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)

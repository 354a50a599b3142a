"""Values → escaped HTML fragments (tables, sections, badges) and the self-contained page shell."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;
background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}
header h1{margin:0 0 4px;font-size:20px}
header .meta{opacity:.85;font-size:13px}
nav{padding:8px 24px;background:#eceff1;font-size:13px}
nav a{margin-right:12px;color:#37474f}
main{padding:8px 24px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:12px 16px;
margin:14px 0}
h2{font-size:17px;margin:4px 0 10px}
h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f5f5f5;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;color:#fff}
.ok,.cached,.pass{background:#2e7d32}.cached{background:#558b2f}
.failed,.fail{background:#c62828}.blocked{background:#ef6c00}
.skipped,.pending,.none{background:#757575}
.notrun{color:#757575;font-style:italic}
.cards{display:flex;flex-wrap:wrap;gap:12px}
.card{border:1px solid #e0e0e0;border-radius:6px;padding:8px 10px;background:#fff}
.card h3{margin-top:0}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:6px 8px;
margin:4px 0;border-radius:4px;max-width:900px;font-size:12px}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}
.diag{font-family:ui-monospace,monospace;font-size:12px;color:#b71c1c}
.verdict{font-size:15px;font-weight:600}
"""


class Raw(str):
    """HTML that is already safe to embed (built by this module or by dialc_runtime.report.svg)."""


def esc(value: Any) -> Raw:
    """Any value → HTML text: Raw passes through, None is a dash, numbers are formatted."""
    if isinstance(value, Raw):
        return value
    if value is None:
        return Raw("–")
    if isinstance(value, bool):
        return Raw("yes" if value else "no")
    if isinstance(value, float):
        return Raw(num(value))
    return Raw(escape(str(value)))


def num(value: Any, digits: int = 4) -> str:
    """A number for reading: integers as they are, floats to `digits` significant places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def pct(value: Any) -> str:
    """A 0..1 share as a percentage, or a dash."""
    return f"{float(value):.1%}" if isinstance(value, int | float) else "–"


def join(parts: Iterable[Any]) -> Raw:
    return Raw("".join(esc(p) for p in parts))


def tag(name: str, body: Any = "", cls: str = "") -> Raw:
    attr = f' class="{escape(cls)}"' if cls else ""
    return Raw(f"<{name}{attr}>{esc(body)}</{name}>")


def badge(status: str) -> Raw:
    return tag("span", status, f"badge {status}")


def verdict_badge(ok: bool | None) -> Raw:
    if ok is None:
        return tag("span", "n/a", "badge none")
    return tag("span", "pass" if ok else "FAIL", "badge " + ("pass" if ok else "fail"))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> Raw:
    """A table; numbers are right-aligned, every cell escaped unless it is Raw."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, int | float) and not isinstance(cell, bool)
            cells.append(f'<td class="n">{esc(cell)}</td>' if numeric else f"<td>{esc(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return Raw(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def pairs(items: Iterable[tuple[str, Any]]) -> Raw:
    """A two-column figure | value table."""
    return table(["figure", "value"], [(k, v) for k, v in items])


def not_run(text: str) -> Raw:
    return tag("p", text, "notrun")


def pre(text: Any, limit: int = 1200) -> Raw:
    """Escaped preformatted text, cut at `limit` characters (say so when cut)."""
    text = "" if text is None else str(text)
    if len(text) > limit:
        text = text[:limit] + f"… [{len(text) - limit} more characters]"
    return tag("pre", text)


def section(anchor: str, title: str, *parts: Any) -> Raw:
    body = "".join(esc(p) for p in parts)
    return Raw(f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>{body}</section>')


def page(title: str, meta: str, sections: list[tuple[str, str, Raw]]) -> str:
    """The whole offline page: inline CSS, no scripts, a link bar to every section."""
    nav = "".join(f'<a href="#{escape(a)}">{escape(t)}</a>' for a, t, _ in sections)
    body = "".join(s for _, _, s in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>{escape(title)}</h1><div class="meta">{escape(meta)}</div></header>'
        f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )

"""Numbers → small self-contained SVG charts (histogram, grouped bars) as XML strings."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2")
FONT = 'font-family="sans-serif" font-size="11"'


def _num(value: float) -> str:
    """Coordinates rounded to 0.1 px: short output, identical bytes for identical input."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg(width: float, height: float, body: list[str], title: str) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(width)}" height="{_num(height)}" '
        f'viewBox="0 0 {_num(width)} {_num(height)}" role="img" aria-label="{escape(title)}">'
    )
    return "".join([head, f"<title>{escape(title)}</title>", *body, "</svg>"])


def _text(x: float, y: float, text: str, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" {FONT}{extra}>'
        f"{escape(text)}</text>"
    )


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str) -> str:
    return (
        f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(w, 0.0))}" '
        f'height="{_num(max(h, 0.0))}" fill="{fill}"><title>{escape(tip)}</title></rect>'
    )


def bin_counts(values: Iterable[float], bins: int, lo: float = 0.0, hi: float = 1.0) -> list[int]:
    """Counts per equal-width bin over lo..hi; the top edge belongs to the last bin."""
    counts = [0] * bins
    span = (hi - lo) or 1.0
    for v in values:
        i = int((min(max(v, lo), hi) - lo) / span * bins)
        counts[min(i, bins - 1)] += 1
    return counts


def histogram(
    values: Iterable[float], title: str, bins: int = 10, width: int = 320, height: int = 140
) -> str:
    """Score histogram over 0..1 with bin edges on the x axis and counts on top of the bars."""
    counts = bin_counts(values, bins)
    top = max(counts) or 1
    left, bottom, pad = 8.0, 22.0, 14.0
    plot_w, plot_h = width - 2 * left, height - bottom - pad
    bar_w = plot_w / bins
    body = [f'<line x1="{_num(left)}" y1="{_num(height - bottom)}" x2="{_num(width - left)}" '
            f'y2="{_num(height - bottom)}" stroke="#888"/>']  # fmt: skip
    for i, n in enumerate(counts):
        h = plot_h * n / top
        x, y = left + i * bar_w, height - bottom - h
        tip = f"{i / bins:.1f}–{(i + 1) / bins:.1f}: {n}"
        body.append(_rect(x + 1, y, bar_w - 2, h, PALETTE[0], tip))
        if n:
            body.append(_text(x + bar_w / 2, y - 3, str(n)))
    for i in range(0, bins + 1, max(1, bins // 5)):
        body.append(_text(left + i * bar_w, height - 8, f"{i / bins:g}"))
    return _svg(width, height, body, title)


def grouped_bars(
    groups: list[tuple[str, list[float]]],
    series: list[str],
    title: str,
    width: int = 420,
    row: int = 16,
) -> str:
    """Horizontal bars of shares in 0..1: one group per label, one bar per series, a legend."""
    label_w, legend_h, gap = 120.0, 18.0, 6.0
    plot_w = width - label_w - 50
    group_h = row * len(series) + gap
    height = legend_h + group_h * max(len(groups), 1) + gap
    body = []
    for j, name in enumerate(series):
        x = label_w + j * 110
        body.append(_rect(x, 4, 10, 10, PALETTE[j % len(PALETTE)], name))
        body.append(_text(x + 14, 13, name, "start"))
    for i, (label, values) in enumerate(groups):
        y0 = legend_h + i * group_h
        body.append(_text(label_w - 6, y0 + group_h / 2, label[:20], "end"))
        for j, value in enumerate(values):
            y = y0 + j * row
            w = plot_w * min(max(value, 0.0), 1.0)
            body.append(_rect(label_w, y + 1, w, row - 3, PALETTE[j % len(PALETTE)],
                              f"{label} {series[j]}: {value:.1%}"))  # fmt: skip
            body.append(_text(label_w + w + 4, y + row - 4, f"{value:.0%}", "start"))
    return _svg(width, height, body, title)

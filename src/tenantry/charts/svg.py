"""Klips drawn as lean, self-contained SVG: no script, no stylesheet, no external reference.

The same markup is inlined in the live HTML page and typeset by Typst for the exports, so it uses
only plain presentation attributes that browsers and Typst's SVG renderer draw alike. The Setup
watermark is one more layer, drawn last (`watermarked`), so it lies over the chart, not under it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from tenantry.klips.spec import KlipBody, Size
from tenantry.text import scrub

WIDTH = 480
HEIGHT = 300
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#ec4899", "#84cc16")
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
MAX_BARS = 40
MAX_SLICES = 8
MAX_POINTS = 400
TITLE_BAND = 34

Rows = Sequence[Mapping[str, Any]]


def number(value: Any) -> float | None:
    """A cell as a number, or None when it is not one (booleans are not numbers here)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            as_float = float(value)
        except OverflowError:  # an integer beyond a float's range
            return None
        return as_float if math.isfinite(as_float) else None
    if isinstance(value, str):
        try:
            parsed = float(value.replace(",", "").strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _text(x: float, y: float, content: str, size: int = 12, fill: str = INK, anchor: str = "start") -> str:
    # Every piece of text drawn passes here: scrubbed, whatever the data held when it was stored,
    # since XML (and so Typst's SVG reader) refuses most control characters and lone surrogates.
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" '
        f'text-anchor="{anchor}">{escape(scrub(content))}</text>'
    )


def _clip(content: str, length: int) -> str:
    return content if len(content) <= length else content[: max(1, length - 1)] + "…"


def _frame(title: str, body: list[str], width: int, height: int) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}">'
    )
    return "".join([head, _text(12, 22, _clip(title, 60), 15, INK), *body, "</svg>"])


def _message(title: str, message: str, width: int, height: int) -> str:
    return _frame(title, [_text(width / 2, height / 2 + 10, message, 13, MUTED, "middle")], width, height)


def _grouped(rows: Rows, key: str, value: str) -> list[tuple[str, float]]:
    """Sum `value` per distinct `key`, in order of first appearance (a sum beyond a float's range
    cannot be drawn and is left out, like a value that is not a number)."""
    totals: dict[str, float] = {}
    for row in rows:
        amount = number(row.get(value))
        if amount is None:
            continue
        label = str(row.get(key, ""))
        totals[label] = totals.get(label, 0.0) + amount
    return [(label, total) for label, total in totals.items() if math.isfinite(total)]


def _missing(rows: Rows, columns: Sequence[str]) -> str | None:
    if not rows:
        return "No data yet"
    present = set().union(*(row.keys() for row in rows[:50]))
    absent = [c for c in columns if c not in present]
    if absent:
        return "No column " + ", ".join(repr(c) for c in absent)
    return None


def _value(title: str, rows: Rows, columns: Mapping[str, Any], width: int, height: int) -> str:
    column = columns["value"]
    problem = _missing(rows, [column])
    if problem:
        return _message(title, problem, width, height)
    raw = rows[-1].get(column)
    amount = number(raw)
    shown = format_number(amount) if amount is not None else str(raw if raw is not None else "–")
    size = max(18, min(64, int(width * 1.6 / max(len(shown), 1))))
    body = [
        _text(width / 2, (height + TITLE_BAND) / 2 + size / 3, _clip(shown, 24), size, PALETTE[0], "middle")
    ]
    return _frame(title, body, width, height)


def _table(title: str, rows: Rows, columns: Mapping[str, Any], width: int, height: int) -> str:
    if not rows:
        return _message(title, "No data yet", width, height)
    fields = list(columns.get("fields") or [])
    if not fields:
        for row in rows[:50]:
            fields.extend(k for k in row if k not in fields)
    fields = fields[:8]
    line = 20
    capacity = max(1, int((height - TITLE_BAND - line - 18) // line))
    shown = rows[:capacity]
    cell = (width - 24) / max(len(fields), 1)
    chars = max(3, int(cell / 7))
    body = []
    y = TITLE_BAND + 16
    for i, field in enumerate(fields):
        body.append(_text(12 + i * cell, y, _clip(field, chars), 12, MUTED))
    body.append(f'<line x1="12" y1="{y + 5}" x2="{width - 12}" y2="{y + 5}" stroke="{GRID}"/>')
    for row in shown:
        y += line
        for i, field in enumerate(fields):
            value = row.get(field)
            amount = number(value) if not isinstance(value, str) else None
            text = format_number(amount) if amount is not None else ("" if value is None else str(value))
            body.append(_text(12 + i * cell, y, _clip(text, chars), 12))
    if len(rows) > len(shown):
        body.append(_text(12, height - 8, f"+{len(rows) - len(shown):,} more rows", 11, MUTED))
    return _frame(title, body, width, height)


def _plot(values: Sequence[float], width: int, height: int) -> tuple[float, float, float, list[str], Any]:
    """The plot area (bottom, left, right), its gridlines and the value-to-y scale."""
    top, bottom, left, right = TITLE_BAND + 8, height - 34, 56, width - 12
    body, y = _axes(values, top, bottom, right)
    return bottom, left, right, body, y


def _axes(values: Sequence[float], top: float, bottom: float, right: float) -> tuple[list[str], Any]:
    """A value scale that always includes zero, with four gridlines and their labels."""
    low, high = min(0.0, *values), max(0.0, *values)
    if high == low:
        high = low + 1
    # Halved before subtracting: the span of two finite floats may itself be beyond a float.
    half_span = high / 2 - low / 2

    def y(v: float) -> float:
        return bottom - (v / 2 - low / 2) / half_span * (bottom - top)

    marks = []
    for i in range(5):
        v = low * (1 - i / 4) + high * (i / 4)
        marks.append(f'<line x1="52" y1="{y(v):.1f}" x2="{right}" y2="{y(v):.1f}" stroke="{GRID}"/>')
        marks.append(_text(46, y(v) + 4, _clip(format_number(v), 8), 10, MUTED, "end"))
    return marks, y


def _bar(title: str, rows: Rows, columns: Mapping[str, Any], width: int, height: int) -> str:
    x, yc = columns["x"], columns["y"]
    problem = _missing(rows, [x, yc])
    if problem:
        return _message(title, problem, width, height)
    groups = _grouped(rows, x, yc)
    if not groups:
        return _message(title, f"No numbers in {yc!r}", width, height)
    extra = max(0, len(groups) - MAX_BARS)
    groups = groups[:MAX_BARS]
    bottom, left, right, body, y = _plot([v for _, v in groups], width, height)
    slot = (right - left) / len(groups)
    bar = max(1.0, slot * 0.7)
    label_every = max(1, math.ceil(len(groups) / 10))
    for i, (label, value) in enumerate(groups):
        x0 = left + i * slot + (slot - bar) / 2
        y0, y1 = sorted((y(value), y(0.0)))
        body.append(
            f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{bar:.1f}" height="{max(y1 - y0, 0.5):.1f}" '
            f'fill="{PALETTE[0]}"/>'
        )
        if i % label_every == 0:
            body.append(_text(x0 + bar / 2, bottom + 16, _clip(label, 10), 10, MUTED, "middle"))
    if extra:
        body.append(_text(right, height - 6, f"+{extra} more", 10, MUTED, "end"))
    return _frame(title, body, width, height)


def _line(title: str, rows: Rows, columns: Mapping[str, Any], width: int, height: int) -> str:
    x, yc = columns["x"], columns["y"]
    problem = _missing(rows, [x, yc])
    if problem:
        return _message(title, problem, width, height)
    points = [(str(r.get(x, "")), v) for r in rows if (v := number(r.get(yc))) is not None]
    if not points:
        return _message(title, f"No numbers in {yc!r}", width, height)
    # Long series are thinned to a fixed number of points: the line looks the same, the SVG stays small.
    step = max(1, math.ceil(len(points) / MAX_POINTS))
    points = points[::step]
    bottom, left, right, body, y = _plot([v for _, v in points], width, height)
    dx = (right - left) / max(len(points) - 1, 1)
    path = " ".join(f"{left + i * dx:.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    body.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>')
    label_every = max(1, math.ceil(len(points) / 6))
    for i in range(0, len(points), label_every):
        body.append(_text(left + i * dx, bottom + 16, _clip(points[i][0], 12), 10, MUTED, "middle"))
    return _frame(title, body, width, height)


def _pie(title: str, rows: Rows, columns: Mapping[str, Any], width: int, height: int) -> str:
    label, value = columns["label"], columns["value"]
    problem = _missing(rows, [label, value])
    if problem:
        return _message(title, problem, width, height)
    slices = sorted(((k, v) for k, v in _grouped(rows, label, value) if v > 0), key=lambda s: -s[1])
    if not slices:
        return _message(title, f"No positive numbers in {value!r}", width, height)
    # Shares of the largest slice: their sum stays small where the sum of the values could
    # overflow a float.
    largest = slices[0][1]
    slices = [(k, v / largest) for k, v in slices]
    if len(slices) > MAX_SLICES:
        rest = sum(v for _, v in slices[MAX_SLICES - 1 :])
        slices = [*slices[: MAX_SLICES - 1], ("Other", rest)]
    total = sum(v for _, v in slices)
    radius = (height - TITLE_BAND - 20) / 2
    cx, cy = 20 + radius, TITLE_BAND + 10 + radius
    body = []
    angle = -math.pi / 2
    for i, (name, amount) in enumerate(slices):
        colour = PALETTE[i % len(PALETTE)]
        share = amount / total
        if share >= 0.9999:
            body.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{colour}"/>')
        else:
            end = angle + share * 2 * math.pi
            large = 1 if share > 0.5 else 0
            x0, y0 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            x1, y1 = cx + radius * math.cos(end), cy + radius * math.sin(end)
            body.append(
                f'<path d="M{cx:.1f},{cy:.1f} L{x0:.1f},{y0:.1f} A{radius:.1f},{radius:.1f} 0 {large} 1 '
                f'{x1:.1f},{y1:.1f} Z" fill="{colour}"/>'
            )
            angle = end
        ly = TITLE_BAND + 18 + i * 20
        lx = cx + radius + 24
        body.append(f'<rect x="{lx:.1f}" y="{ly - 10:.1f}" width="12" height="12" fill="{colour}"/>')
        body.append(_text(lx + 18, ly, f"{_clip(name, 18)} ({share:.0%})", 11))
    return _frame(title, body, width, height)


_DRAW = {"value": _value, "table": _table, "bar": _bar, "line": _line, "pie": _pie}
KINDS = tuple(_DRAW)
# The columns each kind must map; `table` shows all columns unless `fields` lists some.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "value": ("value",),
    "table": (),
    "bar": ("x", "y"),
    "line": ("x", "y"),
    "pie": ("label", "value"),
}


def render(
    kind: str, title: str, rows: Rows, columns: Mapping[str, Any], width: int = WIDTH, height: int = HEIGHT
) -> str:
    return _DRAW[kind](title, rows, columns, width, height)


CELL_W = 80
CELL_H = 120


def box(size: Size) -> tuple[int, int]:
    """A klip's drawing size in pixels for its size on the grid."""
    return size.w * CELL_W, size.h * CELL_H


def draw(
    body: KlipBody, title: str, rows: Rows, *, size: Size = Size(), previous: float | None = None
) -> str:
    """A klip drawn from its query's output `rows` (already grouped and sorted), in the box of
    its `size`; `previous` is the previous period's value for a value klip comparing with it."""
    raise NotImplementedError


def attention(title: str, reason: str, size: Size = Size()) -> str:
    """A "Needs attention" card saying why the klip cannot be drawn (its source changed)."""
    raise NotImplementedError


WATERMARK = "SETUP MODE"
WATERMARK_RED = "#dc2626"
_VIEWBOX = re.compile(r'viewBox="0 0 (\d+) (\d+)"')


def watermarked(drawing: str) -> str:
    """The drawing with the Setup watermark over everything in it (SPEC §12).

    Drawn last, so it lies on top of a full bar, a pie or a single value; semi-transparent red
    with a translucent white halo, so it stays legible on any colour and the chart shows through.
    It is real text, so it is found in the text layer of a PDF.
    """
    found = _VIEWBOX.search(drawing, 0, 300)
    width, height = (int(found[1]), int(found[2])) if found else (WIDTH, HEIGHT)
    cx, cy = width / 2, (height + TITLE_BAND) / 2
    size = max(14, round(width * 0.09))
    layer = (
        f'<g pointer-events="none" aria-hidden="true" transform="rotate(-24 {cx:.1f} {cy:.1f})">'
        f'<text x="{cx:.1f}" y="{cy + size * 0.36:.1f}" font-size="{size}" font-weight="bold" '
        f'text-anchor="middle" fill="{WATERMARK_RED}" fill-opacity="0.75" stroke="#ffffff" '
        f'stroke-opacity="0.85" stroke-width="{max(2, round(size / 7))}" stroke-linejoin="round" '
        f'paint-order="stroke">{WATERMARK}</text></g>'
    )
    end = drawing.rindex("</svg>")
    return drawing[:end] + layer + drawing[end:]

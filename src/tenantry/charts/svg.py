"""Klips drawn as lean, self-contained SVG: no script, no stylesheet, no external reference.

The same markup is inlined in the live HTML page and typeset by Typst for the exports, so it uses
only plain presentation attributes that browsers and Typst's SVG renderer draw alike. Every
drawing is an image with a text alternative (`role="img"`, an `aria-label` with the title and a
`<desc>` listing the numbers) and hover titles on its bars, points and slices. The Setup
watermark is one more layer, drawn last (`watermarked`), so it lies over the chart, not under it.

`draw` takes a klip's query output (already grouped and sorted by `klips.query`) and the size of
its cell on the dashboard's 12-column grid; `render` is the first edition's call, kept for the
callers that still pass a kind and a column mapping.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markdown_it.token import Token

from tenantry.charts.formats import CURRENCY_SYMBOLS, MISSING, as_number, format_value
from tenantry.charts.markdown import parser
from tenantry.charts.ticks import nice_ticks
from tenantry.klips.spec import Format, KlipBody, KlipColumns, Size, Target, gauge_range
from tenantry.text import scrub

WIDTH = 480
HEIGHT = 300
CELL_W = 80
CELL_H = 120
# Okabe and Ito's colour-blind-safe palette, in its usual order (grey in place of black, which
# reads as text).
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999999")
UP = "#009E73"  # bluish green: a rise
DOWN = "#D55E00"  # vermillion: a fall; the two differ for every kind of colour vision
ACCENT = "#0072B2"
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
TRACK = "#e5e7eb"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
MAX_BARS = 40
MAX_SLICES = 8
MAX_POINTS = 400
# Points carrying their own hover title; a longer line keeps one title for the whole series, so
# the drawing stays small.
MAX_MARKED_POINTS = 120
MAX_DESC_ITEMS = 40
TITLE_BAND = 34
LEGEND_BAND = 18

Rows = Sequence[Mapping[str, Any]]


def number(value: Any) -> float | None:
    """A cell as a number, or None when it is not one (booleans are not numbers here)."""
    return as_number(value)


def format_number(value: float) -> str:
    """The first edition's name for a number in the default format (`formats.format_value`)."""
    return format_value(value)


def box(size: Size) -> tuple[int, int]:
    """A klip's drawing size in pixels for its size on the grid."""
    return size.w * CELL_W, size.h * CELL_H


# -- pieces ---------------------------------------------------------------------------------------


def _clean(content: str) -> str:
    # Every piece of text drawn passes here: scrubbed, whatever the data held when it was stored,
    # since XML (and so Typst's SVG reader) refuses most control characters and lone surrogates.
    return escape(scrub(content))


def _text(
    x: float,
    y: float,
    content: str,
    size: float = 12,
    fill: str = INK,
    anchor: str = "start",
    bold: bool = False,
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" fill="{fill}" '
        f'text-anchor="{anchor}"{weight}>{_clean(content)}</text>'
    )


def _hover(label: str) -> str:
    return f"<title>{_clean(label)}</title>"


def _clip(content: str, length: int) -> str:
    return content if len(content) <= length else content[: max(1, length - 1)] + "…"


def _chars(width: float, size: float = 12) -> int:
    """How many characters of text at `size` fit in `width` (an average glyph is ~0.6 em)."""
    return max(1, int(width / (size * 0.6)))


def _frame(title: str, desc: str, body: list[str], width: int, height: int) -> str:
    # The viewBox comes first: `watermarked` looks for it in the opening of the drawing. The title
    # is the image's name (aria-label) and drawn text, not a <title> too: one text, found once.
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" font-family="{FONT}" role="img" aria-label="{_clean(title)}">'
        f"<desc>{_clean(desc)}</desc>"
    )
    heading = _text(12, 22, _clip(title, _chars(width - 20, 15)), 15, INK)
    return "".join([head, heading, *body, "</svg>"])


def _describe(items: Sequence[str], total: int | None = None) -> str:
    """The text alternative's list: the first items, then how many more (`total` counts those
    not even formatted)."""
    total = len(items) if total is None else total
    shown = list(items[:MAX_DESC_ITEMS])
    if total > len(shown):
        shown.append(f"and {total - len(shown):,} more")
    return "; ".join(shown)


def _message(title: str, message: str, width: int, height: int) -> str:
    lines = _wrap_plain(message, _chars(width - 24, 13))[:3]
    top = (height + TITLE_BAND) / 2 - (len(lines) - 1) * 9
    body = [_text(width / 2, top + i * 18 + 4, line, 13, MUTED, "middle") for i, line in enumerate(lines)]
    return _frame(title, message, body, width, height)


def _wrap_plain(text: str, chars: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > chars:
            lines.append(current)
            current = ""
        current = f"{current} {word}" if current else _clip(word, chars)
    return [*lines, current] if current else lines or [""]


def _missing(rows: Rows, columns: Sequence[str | None]) -> str | None:
    if not rows:
        return "No data yet"
    present = set().union(*(row.keys() for row in rows[:50]))
    absent = [c for c in columns if c is not None and c not in present]
    if absent:
        return "No column " + ", ".join(repr(c) for c in absent)
    return None


def attention(title: str, reason: str, size: Size = Size()) -> str:
    """A "Needs attention" card saying why the klip cannot be drawn (its source changed)."""
    width, height = box(size)
    lines = _wrap_plain(reason, _chars(width - 24, 12))
    room = max(1, int((height - TITLE_BAND - 30) // 16))
    if len(lines) > room:
        lines = [*lines[: room - 1], _clip(lines[room - 1] + " …", _chars(width - 24, 12))]
    body = [_text(12, TITLE_BAND + 18, "⚠ Needs attention", 13, DOWN, bold=True)]
    body += [_text(12, TITLE_BAND + 38 + i * 16, line, 12, INK) for i, line in enumerate(lines)]
    return _frame(title, f"Needs attention: {reason}", body, width, height)


# -- value and gauge ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A value against its reference: the signed change shown, its direction and what it is
    against ("vs previous row")."""

    shown: str
    direction: int
    against: str


def _reference(body: KlipBody, rows: Rows, column: str, previous: float | None) -> tuple[float | None, str]:
    compare = body.compare
    if isinstance(compare, Target):
        return compare.target, f"vs target {format_value(compare.target, body.format)}"
    if compare == "previous_row":
        return (number(rows[-2].get(column)) if len(rows) > 1 else None), "vs previous row"
    return previous, "vs previous period"


def change(body: KlipBody, rows: Rows, column: str, current: float, previous: float | None) -> Change | None:
    """How the last value compares with what `body.compare` names, or None without a compare.

    The change is relative ("+12.5%") unless the reference is 0, where a relative change has no
    meaning: then it is the signed difference in the value's own format."""
    if body.compare is None:
        return None
    reference, against = _reference(body, rows, column, previous)
    if reference is None:
        return Change("–", 0, against.replace("vs ", "no "))
    direction = (current > reference) - (current < reference)
    # Halved before subtracting: the difference of two finite floats may itself be beyond a float.
    half = abs(current / 2 - reference / 2)
    if reference == 0:
        shown = format_value(abs(current), body.format)
    else:
        relative = half / abs(reference) * 200
        shown = f"{relative:,.1f}%" if math.isfinite(relative) else "–"
    sign = "+" if direction > 0 else "-" if direction < 0 else "±"
    return Change(sign + shown if shown != "–" else shown, direction, against)


def _sparkline(values: Sequence[float], left: float, top: float, width: float, height: float) -> str:
    # A long series is thinned like a line chart's.
    values = values[:: max(1, math.ceil(len(values) / MAX_POINTS))]
    low, high = min(values), max(values)
    # Halved: the span of two finite floats may itself be beyond a float.
    half_span = (high / 2 - low / 2) or 1.0
    dx = width / max(len(values) - 1, 1)
    points = " ".join(
        f"{left + i * dx:.1f},{top + height - (v / 2 - low / 2) / half_span * height:.1f}"
        for i, v in enumerate(values)
    )
    return f'<polyline points="{points}" fill="none" stroke="{ACCENT}" stroke-width="1.5"/>'


def _value(body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None) -> str:
    column = body.columns.value
    assert column is not None
    problem = _missing(rows, [column])
    if problem:
        return _message(title, problem, width, height)
    raw = rows[-1].get(column)
    amount = number(raw)
    # A whole number as it is (its digits past 2**53 kept), anything else as the number it reads as.
    shown = format_value(raw if type(raw) is int or amount is None else amount, body.format)
    changed = change(body, rows, column, amount, previous) if amount is not None else None
    spark = [v for r in rows if (v := number(r.get(column))) is not None] if body.sparkline else []
    bands = (22 if changed else 0) + (min(40, height * 0.22) if len(spark) > 1 else 0)
    room = height - TITLE_BAND - bands - 8
    size = max(14, min(64, int(width * 1.6 / max(len(shown), 1)), int(room * 0.8)))
    baseline = TITLE_BAND + (room + size * 0.7) / 2
    desc = shown
    parts = [_text(width / 2, baseline, _clip(shown, 24), size, INK, "middle", bold=True)]
    y = baseline + 8
    if changed:
        colour = UP if changed.direction > 0 else DOWN if changed.direction < 0 else MUTED
        arrow = "▲ " if changed.direction > 0 else "▼ " if changed.direction < 0 else ""
        y += 16
        line = f"{arrow}{changed.shown}"
        small = max(9, min(13, int(width / 30)))
        parts.append(_text(width / 2 - 4, y, line, small + 1, colour, "end", bold=True))
        parts.append(
            _text(width / 2 + 4, y, _clip(changed.against, _chars(width / 2 - 8, small)), small, MUTED)
        )
        desc += f", {changed.shown} {changed.against}"
    if len(spark) > 1:
        band = min(40, height * 0.22)
        parts.append(_sparkline(spark, 16, height - band - 6, width - 32, band - 4))
        desc += f"; trend of {len(spark):,} values from {format_value(spark[0], body.format)}"
    return _frame(title, desc, parts, width, height)


def _arc(cx: float, cy: float, r: float, start: float, end: float) -> str:
    """An arc of the upper half circle between two fractions of it (0 at the left, 1 at the right)."""
    a0, a1 = math.pi * (1 - start), math.pi * (1 - end)
    x0, y0 = cx + r * math.cos(a0), cy - r * math.sin(a0)
    x1, y1 = cx + r * math.cos(a1), cy - r * math.sin(a1)
    return f"M{x0:.1f},{y0:.1f} A{r:.1f},{r:.1f} 0 0 1 {x1:.1f},{y1:.1f}"


def _gauge(body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None) -> str:
    column = body.columns.value
    assert column is not None
    problem = _missing(rows, [column])
    if problem:
        return _message(title, problem, width, height)
    low, high = gauge_range(body)
    amount = number(rows[-1].get(column))
    if amount is None:
        return _message(title, f"No number in {column!r}", width, height)

    def share(v: float) -> float:
        return min(1.0, max(0.0, _fraction(v, low, high)))

    r = max(10.0, min((width - 40) / 2, height - TITLE_BAND - 40))
    thick = max(6.0, r * 0.28)
    cx, cy = width / 2, TITLE_BAND + 8 + r
    shown = format_value(amount, body.format)
    scale = f"{format_value(low, body.format)} to {format_value(high, body.format)}"
    parts = [
        f'<path d="{_arc(cx, cy, r - thick / 2, 0, 1)}" fill="none" stroke="{TRACK}" '
        f'stroke-width="{thick:.1f}"/>'
    ]
    if share(amount) > 0:
        parts.append(
            f'<path d="{_arc(cx, cy, r - thick / 2, 0, share(amount))}" fill="none" stroke="{ACCENT}" '
            f'stroke-width="{thick:.1f}">{_hover(f"{shown} of {scale}")}</path>'
        )
    desc = f"{shown} on a scale from {scale}"
    if body.target is not None:
        angle = math.pi * (1 - share(body.target))
        inner, outer = r - thick - 4, r + 4
        target = format_value(body.target, body.format)
        parts.append(
            f'<line x1="{cx + inner * math.cos(angle):.1f}" y1="{cy - inner * math.sin(angle):.1f}" '
            f'x2="{cx + outer * math.cos(angle):.1f}" y2="{cy - outer * math.sin(angle):.1f}" '
            f'stroke="{INK}" stroke-width="2">{_hover(f"Target: {target}")}</line>'
        )
        desc += f", target {target}"
    # The number sits inside the arc: as large as the hole leaves room for.
    size = max(9, min(40, int(r * 0.45), int(2 * (r - thick) / (max(len(shown), 1) * 0.62))))
    parts.append(_text(cx, cy - 4, _clip(shown, 16), size, INK, "middle", bold=True))
    parts.append(_text(cx - r + thick / 2, cy + 16, format_value(low, body.format), 10, MUTED, "middle"))
    parts.append(_text(cx + r - thick / 2, cy + 16, format_value(high, body.format), 10, MUTED, "middle"))
    return _frame(title, desc, parts, width, height)


# -- bar, line, area ------------------------------------------------------------------------------


def series_of(body: KlipBody) -> list[tuple[str, str]]:
    """The (column, label) of each series a chart draws: its `series`, else `columns.y`."""
    if body.series:
        return [(s.column, s.label or s.column) for s in body.series]
    y = body.columns.y
    return [(y, y)] if y is not None else []


def _label(value: Any) -> str:
    """A group's key as its label: a null key reads "–", as it does in a table."""
    return MISSING if value is None else str(value)


def _table_of(
    rows: Rows, x: str, columns: Sequence[str], *, sum_repeats: bool
) -> list[tuple[str, list[float | None]]]:
    """(x label, one value per series) per row; with `sum_repeats`, rows sharing an x are summed
    (a klip without a query shows its raw rows, as the first edition did)."""
    if not sum_repeats:
        return [(_label(r.get(x, "")), [number(r.get(c)) for c in columns]) for r in rows]
    totals: dict[str, list[float | None]] = {}
    for row in rows:
        sums = totals.setdefault(_label(row.get(x, "")), [None] * len(columns))
        for i, c in enumerate(columns):
            amount = number(row.get(c))
            if amount is not None:
                total = (sums[i] or 0.0) + amount
                # A sum beyond a float's range cannot be drawn: left out like a non-number.
                sums[i] = total if math.isfinite(total) else sums[i]
    return list(totals.items())


@dataclass(frozen=True)
class Scale:
    """A value axis: its nice ticks and the mapping from a value to a pixel between two ends."""

    ticks: list[float]
    start: float
    end: float

    def __call__(self, value: float) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        # A value beyond the axis (a stack whose sum is beyond a float) is drawn to its end.
        value = min(max(value, low), high)
        return self.start + _fraction(value, low, high) * (self.end - self.start)


def _fraction(value: float, low: float, high: float) -> float:
    """Where `value` lies from `low` (0) to `high` (1). Halved before subtracting, as the span of two
    finite floats may itself be beyond a float; not halved when halving loses the span (the ends
    only a few of a float's smallest steps apart, 0 to 5e-324); 0 on an axis of one value."""
    half = high / 2 - low / 2
    if half != 0:
        return (value / 2 - low / 2) / half
    return 0.0 if high == low else (value - low) / (high - low)


def _scale(values: Sequence[float], start: float, end: float, spacing: float = 36) -> Scale:
    low, high = min(0.0, *values), max(0.0, *values)
    room = max(2, int(abs(end - start) // spacing) + 1)
    count = min(6, room)
    ticks = nice_ticks(low, high, count)
    # The nearest round step may give more ticks than asked for: fewer are asked until they fit.
    while len(ticks) > room and count > 2:
        count -= 1
        ticks = nice_ticks(low, high, count)
    return Scale(ticks, start, end)


def tick_labels(ticks: Sequence[float], fmt: Format | None, width: int) -> list[str]:
    """The axis labels of `ticks` in the klip's format, shortened to fit: round ticks drop a
    currency's cents, and labels too long for the box turn compact (20,000,000 → 20M)."""
    fmt = fmt or Format()
    whole = all(t == int(t) for t in ticks)
    if fmt.decimals is None and whole and fmt.style == "currency":
        fmt = fmt.model_copy(update={"decimals": 0})
    labels = [format_value(t, fmt) for t in ticks]
    if fmt.style != "compact" and max(len(label) for label in labels) > max(4, width // 60):
        symbol = (
            CURRENCY_SYMBOLS.get(fmt.currency or "USD", f"{fmt.currency} ") if fmt.style == "currency" else ""
        )
        compact = Format(
            style="compact",
            prefix=f"{fmt.prefix or ''}{symbol}",
            suffix=f"{'%' if fmt.style == 'percent' else ''}{fmt.suffix or ''}",
        )
        labels = [format_value(t, compact) for t in ticks]
    return labels


def _legend(names: Sequence[str], width: int) -> list[str]:
    if len(names) < 2:
        return []
    parts = []
    x = 12.0
    room = max(4, _chars((width - 24) / len(names) - 16, 10))
    for i, name in enumerate(names):
        label = _clip(name, room)
        if x + 14 + len(label) * 6 > width - 12:
            # Out of room: the rest are named in the description and the hover titles.
            parts.append(_text(x, TITLE_BAND + 5, f"+{len(names) - i}", 10, MUTED))
            break
        parts.append(
            f'<rect x="{x:.1f}" y="{TITLE_BAND - 4:.1f}" width="10" height="10" '
            f'fill="{PALETTE[i % len(PALETTE)]}"/>'
        )
        parts.append(_text(x + 14, TITLE_BAND + 5, label, 10, MUTED))
        x += 14 + len(label) * 6 + 12
    return parts


def _plot_box(
    width: int, height: int, legend: bool, value_labels: Sequence[str], horizontal_labels: Sequence[str] = ()
) -> tuple[float, float, float, float]:
    """top, bottom, left, right of the plot area, leaving room for the axes' labels."""
    top = TITLE_BAND + (LEGEND_BAND if legend else 0) + 8
    bottom = height - 24
    if horizontal_labels:
        widest = max(len(s) for s in horizontal_labels)
        left = 12 + min(widest, 14, max(3, int(width * 0.3 / 6))) * 6
    else:
        left = 12 + max(len(s) for s in value_labels) * 6
    return top, bottom, float(left), width - 12.0


def _bar(body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None) -> str:
    x = body.columns.x
    assert x is not None
    series = series_of(body)
    problem = _missing(rows, [x, *(c for c, _ in series)])
    if problem:
        return _message(title, problem, width, height)
    table = [
        (label, values)
        for label, values in _table_of(rows, x, [c for c, _ in series], sum_repeats=True)
        if any(v is not None for v in values)
    ]
    if not table:
        return _message(title, "No numbers in " + ", ".join(repr(c) for c, _ in series), width, height)
    extra = max(0, len(table) - MAX_BARS)
    table = table[:MAX_BARS]
    fmt = body.format
    if body.stacked:
        ends = [sum(v for v in values if v is not None and v > 0) for _, values in table]
        ends += [sum(v for v in values if v is not None and v < 0) for _, values in table]
    else:
        ends = [v for _, values in table for v in values if v is not None]
    # A stack beyond a float's range cannot be drawn to scale: the axis keeps to the finite ones.
    ends = [e for e in ends if math.isfinite(e)] or [0.0]
    horizontal = body.orientation == "horizontal"
    names = [name for _, name in series]
    probe = tick_labels(nice_ticks(min(0.0, *ends), max(0.0, *ends)), fmt, width)
    top, bottom, left, right = _plot_box(
        width, height, len(series) > 1, probe, [label for label, _ in table] if horizontal else ()
    )
    if horizontal:
        # Labels side by side along the axis: as many ticks as their width leaves room for.
        scale = _scale(ends, left, right, spacing=max(len(label) for label in probe) * 6 + 16)
    else:
        scale = _scale(ends, bottom, top)
    parts = _legend(names, width)
    for t, shown in zip(scale.ticks, tick_labels(scale.ticks, fmt, width), strict=True):
        at = scale(t)
        if horizontal:
            parts.append(
                f'<line x1="{at:.1f}" y1="{top:.1f}" x2="{at:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>'
            )
            # The last label ends at the axis' end rather than running out of the box.
            last = t == scale.ticks[-1]
            parts.append(_text(at, bottom + 14, shown, 10, MUTED, "end" if last else "middle"))
        else:
            parts.append(
                f'<line x1="{left:.1f}" y1="{at:.1f}" x2="{right:.1f}" y2="{at:.1f}" stroke="{GRID}"/>'
            )
            parts.append(_text(left - 4, at + 3.5, shown, 10, MUTED, "end"))
    across = (bottom - top) if horizontal else (right - left)
    slot = across / len(table)
    thick = slot * 0.75 if body.stacked else slot * 0.75 / len(series)
    label_every = max(1, math.ceil(len(table) / max(1, int(across // (16 if horizontal else 48)))))
    desc = []
    for i, (label, values) in enumerate(table):
        base = (top if horizontal else left) + i * slot + slot * 0.125
        up = down = 0.0
        for j, value in enumerate(values):
            if value is None:
                continue
            if body.stacked:
                start = up if value >= 0 else down
                end = start + value
                if value >= 0:
                    up = end
                else:
                    down = end
                offset = base
            else:
                start, end, offset = 0.0, value, base + j * thick
            a, b = sorted((scale(start), scale(end)))
            length = max(b - a, 0.5)
            if horizontal:
                shape = f'x="{a:.1f}" y="{offset:.1f}" width="{length:.1f}" height="{max(thick, 1):.1f}"'
            else:
                shape = f'x="{offset:.1f}" y="{a:.1f}" width="{max(thick, 1):.1f}" height="{length:.1f}"'
            name = f"{label} – {names[j]}" if len(series) > 1 else label
            shown = format_value(value, fmt)
            parts.append(
                f'<rect {shape} fill="{PALETTE[j % len(PALETTE)]}">{_hover(f"{name}: {shown}")}</rect>'
            )
            desc.append(f"{name}: {shown}")
        if i % label_every == 0:
            middle = (top if horizontal else left) + (i + 0.5) * slot
            if horizontal:
                parts.append(
                    _text(
                        left - 4, middle + 3.5, _clip(label, max(3, int((left - 16) / 6))), 10, MUTED, "end"
                    )
                )
            else:
                parts.append(
                    _text(
                        middle,
                        bottom + 14,
                        _clip(label, max(3, int(slot * label_every / 6.5))),
                        10,
                        MUTED,
                        "middle",
                    )
                )
    if extra:
        parts.append(_text(width - 12, height - 4, f"+{extra:,} more", 10, MUTED, "end"))
    return _frame(title, _describe(desc), parts, width, height)


def _line(
    body: KlipBody,
    title: str,
    rows: Rows,
    width: int,
    height: int,
    previous: float | None,
    *,
    area: bool = False,
) -> str:
    x = body.columns.x
    assert x is not None
    series = series_of(body)
    problem = _missing(rows, [x, *(c for c, _ in series)])
    if problem:
        return _message(title, problem, width, height)
    # Long series are thinned to a fixed number of points, before anything is read of them: the
    # line looks the same, the SVG stays small and a long source costs little more than a short one.
    step = max(1, math.ceil(len(rows) / MAX_POINTS))
    table = [
        (label, values)
        for label, values in _table_of(rows[::step], x, [c for c, _ in series], sum_repeats=False)
        if any(v is not None for v in values)
    ]
    if not table:
        return _message(title, "No numbers in " + ", ".join(repr(c) for c, _ in series), width, height)
    fmt = body.format
    names = [name for _, name in series]
    values = [v for _, vs in table for v in vs if v is not None]
    probe = tick_labels(nice_ticks(min(0.0, *values), max(0.0, *values)), fmt, width)
    top, bottom, left, right = _plot_box(width, height, len(series) > 1, probe)
    scale = _scale(values, bottom, top)
    parts = _legend(names, width)
    for t, shown in zip(scale.ticks, tick_labels(scale.ticks, fmt, width), strict=True):
        at = scale(t)
        parts.append(f'<line x1="{left:.1f}" y1="{at:.1f}" x2="{right:.1f}" y2="{at:.1f}" stroke="{GRID}"/>')
        parts.append(_text(left - 4, at + 3.5, shown, 10, MUTED, "end"))
    dx = (right - left) / max(len(table) - 1, 1)
    base = scale(min(max(0.0, scale.ticks[0]), scale.ticks[-1]))
    marked = len(table) <= MAX_MARKED_POINTS
    desc: list[str] = []
    described = 0
    for j, name in enumerate(names):
        colour = PALETTE[j % len(PALETTE)]
        points = [
            (left + i * dx, scale(value), label, value)
            for i, (label, vs) in enumerate(table)
            if (value := vs[j]) is not None
        ]
        if not points:
            continue
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _, _ in points)
        if area:
            parts.append(
                f'<polygon points="{points[0][0]:.1f},{base:.1f} {path} {points[-1][0]:.1f},{base:.1f}" '
                f'fill="{colour}" fill-opacity="0.25"/>'
            )
        whole = "" if marked else _hover(f"{name}: {len(points):,} points")
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2">{whole}</polyline>'
        )
        described += len(points)
        for px, py, label, value in points:
            if not marked and len(desc) >= MAX_DESC_ITEMS:
                break
            shown = format_value(value, fmt)
            what = f"{label} – {name}" if len(series) > 1 else label
            desc.append(f"{what}: {shown}")
            if marked:
                parts.append(
                    f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}">'
                    f"{_hover(f'{what}: {shown}')}</circle>"
                )
    label_every = max(1, math.ceil(len(table) / max(1, int((right - left) // 64))))
    for i in range(0, len(table), label_every):
        parts.append(_text(left + i * dx, bottom + 14, _clip(table[i][0], 12), 10, MUTED, "middle"))
    return _frame(title, _describe(desc, described), parts, width, height)


def _area(body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None) -> str:
    return _line(body, title, rows, width, height, previous, area=True)


# -- pie, donut, table, text ----------------------------------------------------------------------


def _pie(body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None) -> str:
    label, value = body.columns.label, body.columns.value
    assert label is not None and value is not None
    problem = _missing(rows, [label, value])
    if problem:
        return _message(title, problem, width, height)
    totals = _table_of(rows, label, [value], sum_repeats=True)
    slices = sorted(((k, v[0]) for k, v in totals if v[0] is not None and v[0] > 0), key=lambda s: -s[1])
    if not slices:
        return _message(title, f"No positive numbers in {value!r}", width, height)
    # Shares of the largest slice: their sum stays small where the sum of the values could
    # overflow a float.
    largest = slices[0][1]
    parts_of = [(k, v / largest, v) for k, v in slices]
    if len(parts_of) > MAX_SLICES:
        rest = parts_of[MAX_SLICES:]
        other = ("Other", sum(p for _, p, _ in rest), sum(v for _, _, v in rest))
        parts_of = [*parts_of[:MAX_SLICES], other]
    total_share = sum(p for _, p, _ in parts_of)
    fmt = body.format
    radius = max(8.0, min((height - TITLE_BAND - 16) / 2, width * 0.3))
    cx, cy = 12 + radius, TITLE_BAND + 6 + radius
    parts = []
    desc = []
    angle = -math.pi / 2
    legend_x = cx + radius + 16
    room = _chars(width - legend_x - 30, 11)
    line = min(20.0, (height - TITLE_BAND - 8) / len(parts_of))
    for i, (name, part, amount) in enumerate(parts_of):
        colour = PALETTE[i % len(PALETTE)]
        share = part / total_share
        shown = f"{name}: {format_value(amount, fmt)} ({share:.0%})"
        desc.append(shown)
        if share >= 0.9999:
            parts.append(
                f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{colour}">'
                f"{_hover(shown)}</circle>"
            )
        else:
            end = angle + share * 2 * math.pi
            large = 1 if share > 0.5 else 0
            x0, y0 = cx + radius * math.cos(angle), cy + radius * math.sin(angle)
            x1, y1 = cx + radius * math.cos(end), cy + radius * math.sin(end)
            parts.append(
                f'<path d="M{cx:.1f},{cy:.1f} L{x0:.1f},{y0:.1f} A{radius:.1f},{radius:.1f} 0 {large} 1 '
                f'{x1:.1f},{y1:.1f} Z" fill="{colour}" stroke="#ffffff" stroke-width="1">'
                f"{_hover(shown)}</path>"
            )
            angle = end
        if room >= 4:
            ly = TITLE_BAND + 14 + i * line
            parts.append(
                f'<rect x="{legend_x:.1f}" y="{ly - 9:.1f}" width="10" height="10" fill="{colour}"/>'
            )
            parts.append(_text(legend_x + 14, ly, f"{_clip(name, room)} {share:.0%}", 11))
    if body.kind == "donut":
        total = sum(v for _, _, v in parts_of)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius * 0.58:.1f}" fill="#ffffff"/>')
        shown_total = format_value(total if math.isfinite(total) else None, fmt)
        size = max(9, min(22, int(radius * 1.0 / max(len(shown_total), 1) * 1.7)))
        parts.append(_text(cx, cy + size * 0.35, shown_total, size, INK, "middle", bold=True))
        desc.append(f"Total: {shown_total}")
    return _frame(title, _describe(desc), parts, width, height)


def _table(body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None) -> str:
    if not rows:
        return _message(title, "No data yet", width, height)
    fields = list(body.columns.fields or [])
    if fields:
        problem = _missing(rows, fields)
        if problem:
            return _message(title, problem, width, height)
    else:
        for row in rows[:50]:
            fields.extend(k for k in row if k not in fields)
    formats = body.columns.formats or {}
    fields = fields[: max(1, min(12, int((width - 24) // 40)))]
    line = 20
    capacity = max(1, int((height - TITLE_BAND - line - 18) // line))
    shown = rows[:capacity]
    cell = (width - 24) / max(len(fields), 1)
    chars = max(3, _chars(cell - 6, 12))
    numeric = {
        f: any(number(r.get(f)) is not None and not isinstance(r.get(f), str) for r in shown) for f in fields
    }

    def at(i: int, field: str) -> tuple[float, str]:
        return (12 + (i + 1) * cell - 6, "end") if numeric[field] else (12 + i * cell, "start")

    parts = []
    y = TITLE_BAND + 16
    for i, field in enumerate(fields):
        x, anchor = at(i, field)
        parts.append(_text(x, y, _clip(field, chars), 12, MUTED, anchor, bold=True))
    parts.append(f'<line x1="12" y1="{y + 5}" x2="{width - 12}" y2="{y + 5}" stroke="{GRID}"/>')
    desc = []
    for row in shown:
        y += line
        cells = []
        for i, field in enumerate(fields):
            value = row.get(field)
            text = "" if value is None else format_value(value, formats.get(field))
            x, anchor = at(i, field)
            parts.append(_text(x, y, _clip(text, chars), 12, INK, anchor))
            cells.append(f"{field} {text or '–'}")
        desc.append(", ".join(cells))
    if len(rows) > len(shown):
        parts.append(_text(12, height - 8, f"+{len(rows) - len(shown):,} more rows", 11, MUTED))
        desc.append(f"+{len(rows) - len(shown):,} more rows")
    return _frame(title, _describe(desc), parts, width, height)


Run = tuple[str, bool]  # a piece of text and whether it is bold


def _inline(token: Token) -> list[Run]:
    runs: list[Run] = []
    bold = 0
    for child in token.children or []:
        if child.type == "strong_open":
            bold += 1
        elif child.type == "strong_close":
            bold -= 1
        elif child.type in ("softbreak", "hardbreak"):
            runs.append((" ", bold > 0))
        elif child.type in ("text", "code_inline", "image"):
            runs.append((child.content, bold > 0))
    return runs


def _blocks(text: str) -> list[tuple[str, list[Run]]]:
    """The Markdown as (kind, runs) blocks: kind is "h1".."h6", "p", "li" or "code"."""
    blocks: list[tuple[str, list[Run]]] = []
    tokens = parser().parse(text)
    pending = "p"
    ordinal: list[int] = []
    for token in tokens:
        if token.type == "heading_open":
            pending = token.tag
        elif token.type == "bullet_list_open":
            ordinal.append(0)
        elif token.type == "ordered_list_open":
            ordinal.append(int(token.attrGet("start") or 1))
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            ordinal.pop()
        elif token.type == "list_item_open":
            pending = "li"
        elif token.type == "inline":
            runs = _inline(token)
            if pending == "li" and ordinal:
                marker = "• " if ordinal[-1] == 0 else f"{ordinal[-1]}. "
                if ordinal[-1]:
                    ordinal[-1] += 1
                runs = [(marker, False), *runs]
                blocks.append(("li", runs))
            else:
                blocks.append((pending if pending.startswith("h") else "p", runs))
            pending = "li" if pending == "li" else "p"
        elif token.type in ("fence", "code_block"):
            blocks.extend(("code", [(line, False)]) for line in token.content.rstrip("\n").split("\n"))
        elif token.type == "paragraph_close" and pending == "li":
            pending = "p"
    return blocks


def _wrap_runs(runs: Sequence[Run], chars: int) -> list[list[Run]]:
    lines: list[list[Run]] = [[]]
    used = 0
    for content, bold in runs:
        for piece in re.split(r"(\s+)", content):
            if not piece:
                continue
            if piece.isspace():
                if used:
                    lines[-1].append((" ", bold))
                    used += 1
                continue
            if used and used + len(piece) > chars:
                while lines[-1] and lines[-1][-1][0] == " ":
                    lines[-1].pop()
                lines.append([])
                used = 0
            lines[-1].append((_clip(piece, chars), bold))
            used += min(len(piece), chars)
    return lines


def _run_line(x: float, y: float, runs: Sequence[Run], size: float, all_bold: bool) -> str:
    merged: list[Run] = []
    for content, bold in runs:
        bold = bold or all_bold
        if merged and merged[-1][1] == bold:
            merged[-1] = (merged[-1][0] + content, bold)
        else:
            merged.append((content, bold))
    if len(merged) == 1:
        return _text(x, y, merged[0][0], size, INK, bold=merged[0][1])
    spans = "".join(f'<tspan font-weight="bold">{_clean(c)}</tspan>' if b else _clean(c) for c, b in merged)
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:g}" fill="{INK}" xml:space="preserve">{spans}</text>'
    )


HEADING_SIZES = {"h1": 18, "h2": 16, "h3": 14}


def _text_klip(
    body: KlipBody, title: str, rows: Rows, width: int, height: int, previous: float | None
) -> str:
    source = body.text or ""
    parts = []
    y = TITLE_BAND + 4.0
    clipped = False
    for kind, runs in _blocks(source):
        size = HEADING_SIZES.get(kind, 13 if kind.startswith("h") else 12)
        indent = 20 if kind == "li" else 12
        lines = _wrap_runs(runs, _chars(width - indent - 12, size * (1.08 if kind.startswith("h") else 1)))
        gap = 6 if kind in ("p", "code") or kind.startswith("h") else 2
        y += gap
        for line in lines:
            y += size * 1.3
            if y > height - 6:
                clipped = True
                break
            parts.append(_run_line(indent, y, line, size, kind.startswith("h")))
        if clipped:
            break
    if clipped:
        parts.append(_text(width - 12, height - 6, "…", 14, MUTED, "end"))
    return _frame(title, " ".join(source.split())[:500], parts, width, height)


_DRAW: dict[str, Callable[[KlipBody, str, Rows, int, int, float | None], str]] = {
    "value": _value,
    "bar": _bar,
    "line": _line,
    "area": _area,
    "pie": _pie,
    "donut": _pie,
    "table": _table,
    "gauge": _gauge,
    "text": _text_klip,
}


def draw(
    body: KlipBody, title: str, rows: Rows, *, size: Size = Size(), previous: float | None = None
) -> str:
    """A klip drawn from its query's output `rows` (already grouped and sorted), in the box of
    its `size`; `previous` is the previous period's value for a value klip comparing with it."""
    width, height = box(size)
    return _DRAW[body.kind](body, title, rows, width, height, previous)


# The first edition's kinds and call: a kind and a mapping of columns, in a fixed box.
KINDS = ("value", "table", "bar", "line", "pie")
# The columns each first-edition kind must map; `table` shows all columns unless `fields` lists some.
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
    """The first edition's call, drawn as `draw` does. The body is built without validation:
    stored first-edition klips were checked by their own, looser rules."""
    known = {k: v for k, v in columns.items() if k in KlipColumns.model_fields}
    body = KlipBody.model_construct(kind=kind, columns=KlipColumns.model_construct(**known))
    return _DRAW[kind](body, title, rows, width, height, None)


WATERMARK = "SETUP MODE"
# The watermark's width in ems (bold, about 0.72 em a letter), and the angles it may lie at, the
# steepest first: a wide, low klip gets it flatter rather than cut off by its frame.
_WATERMARK_EMS = 0.72 * len("SETUP MODE")
_WATERMARK_ANGLES = (24, 16, 8, 0)
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
    size, angle = _watermark_fit(width, height)
    layer = (
        f'<g pointer-events="none" aria-hidden="true" transform="rotate(-{angle} {cx:.1f} {cy:.1f})">'
        f'<text x="{cx:.1f}" y="{cy + size * 0.36:.1f}" font-size="{size}" font-weight="bold" '
        f'text-anchor="middle" fill="{WATERMARK_RED}" fill-opacity="0.75" stroke="#ffffff" '
        f'stroke-opacity="0.85" stroke-width="{max(2, round(size / 7))}" stroke-linejoin="round" '
        f'paint-order="stroke">{WATERMARK}</text></g>'
    )
    end = drawing.rindex("</svg>")
    return drawing[:end] + layer + drawing[end:]


def _watermark_fit(width: int, height: int) -> tuple[int, int]:
    """The watermark's font size and angle: as large as 9% of the width, its turned box inside the
    drawing below the title, at the steepest angle that gives (about) the largest size."""
    wanted = max(14, round(width * 0.09))
    room_w, room_h = max(1, width - 16), max(1, height - TITLE_BAND - 8)
    best_size, best_angle = 0.0, _WATERMARK_ANGLES[0]
    for angle in _WATERMARK_ANGLES:
        sin, cos = math.sin(math.radians(angle)), math.cos(math.radians(angle))
        fits = min(room_w / (_WATERMARK_EMS * cos + sin), room_h / (_WATERMARK_EMS * sin + cos))
        size = min(float(wanted), fits)
        if size > best_size * 1.1:  # a flatter angle only for a clearly larger watermark
            best_size, best_angle = size, angle
    return max(10, int(best_size)), best_angle

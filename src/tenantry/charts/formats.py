"""Numbers as a klip shows them (SPEC §13 `format`): en-US grouping, percent, currency, compact.

Pure: the live page, the published page, the exports and the builder's preview all format
through `format_value`, so a number reads the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any

from tenantry.klips.spec import Format

MISSING = "–"
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
# Compact suffixes, largest first: 2,500,000 → 2.5M.
_COMPACT = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
# Whole numbers within a float's range are formatted as numbers; larger ones are shown as their text.
_FLOAT_RANGE = 10**308


def as_number(value: Any) -> float | None:
    """A cell as a finite number, or None (booleans and text are not numbers here; text that
    reads as a number, like "1,200", is)."""
    kind = type(value)
    if kind is float:  # the common case first: a chart reads thousands of cells
        return value if math.isfinite(value) else None
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


def _grouped(amount: float | int, decimals: int | None) -> str:
    """en-US grouping; without `decimals`, whole numbers show none and others up to two. An `int`
    keeps all its digits (a float would change those past 2**53: ids, exact sums)."""
    if type(amount) is int:
        return f"{amount:,}" + ("." + "0" * decimals if decimals else "")
    if decimals is not None:
        return f"{amount:,.{decimals}f}"
    if amount == int(amount) and abs(amount) < 1e15:
        return f"{int(amount):,}"
    shown = f"{amount:,.2f}".rstrip("0").rstrip(".")
    return "0" if shown in ("-0", "") else shown


def _compact(amount: float, decimals: int | None) -> str:
    places = 1 if decimals is None else decimals
    for i, (scale, suffix) in enumerate(_COMPACT):
        if abs(round(amount, places)) >= scale:
            # 999,999 would round to "1,000K": it is shown with the next suffix up, as "1M".
            if i > 0 and abs(round(amount / scale, places)) >= 1000:
                scale, suffix = _COMPACT[i - 1]
            return _shown(amount / scale, decimals, places) + suffix
    return _shown(amount, decimals, places)


def _shown(amount: float, decimals: int | None, places: int) -> str:
    # Without `decimals`, compact numbers keep one decimal only where it says something: 2.5M, 3M.
    return _grouped(round(amount, places) if decimals is None else amount, decimals)


def format_value(value: Any, fmt: Format | None = None) -> str:
    """`value` as text for a reader: numbers formatted by `fmt` (en-US grouping when none),
    anything else as its text, a missing value as "–"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    amount: float | int | None = None
    if type(value) is int and abs(value) < _FLOAT_RANGE:
        amount = value  # exact, past 2**53 too
    elif not isinstance(value, str):
        amount = as_number(value)
    if amount is None:
        return str(value)
    fmt = fmt or Format()
    sign = "-" if amount < 0 else ""
    if fmt.style == "currency":
        code = fmt.currency or "USD"
        decimals = fmt.decimals if fmt.decimals is not None else (0 if code == "JPY" else 2)
        digits = _grouped(abs(amount), decimals)
        if not digits.strip("0.,"):
            sign = ""  # -0.004 shows as $0.00
        symbol = CURRENCY_SYMBOLS.get(code)
        shown = f"{sign}{symbol}{digits}" if symbol else f"{sign}{code} {digits}"
    elif fmt.style == "compact":
        shown = _compact(amount, fmt.decimals)
    elif fmt.style == "percent":
        shown = _grouped(amount, fmt.decimals) + "%"
    else:
        shown = _grouped(amount, fmt.decimals)
    if shown.startswith("-") and all(c in "0.,%" for c in shown[1:].rstrip("KMBT")):
        shown = shown[1:]  # -0.00 reads as 0.00
    return f"{fmt.prefix or ''}{shown}{fmt.suffix or ''}"

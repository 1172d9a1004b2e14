"""Nice round axis ticks (SPEC §13): steps of 1, 2 or 5 times a power of ten, covering the data."""

from __future__ import annotations

import math


def nice_step(span: float, count: int) -> float:
    """The 1-2-5 step nearest span / count (nearest by ratio: 42.5 gives 50, 25 gives 20)."""
    raw = span / max(count, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    return min((f * power for f in (1, 2, 5, 10)), key=lambda step: abs(math.log(step / raw)))


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About `count` round ticks from at or below `low` to at or above `high`.

    0..170 gives 0, 50, 100, 150, 200. Equal ends still get a small range around them, so a flat
    series has an axis; ends given the wrong way round are swapped."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    low, high = min(low, high), max(low, high)
    try:
        ticks = _ticks(low, high, count)
    except (OverflowError, ValueError):
        ticks = []
    # Near a float's limits round steps cannot be counted: the axis then shows just its two ends.
    if len(ticks) < 2 or not all(math.isfinite(t) for t in ticks):
        return [low, high] if low < high else [low, low + 1]
    return ticks


def _ticks(low: float, high: float, count: int) -> list[float]:
    if high == low:
        if low == 0:
            high = 1.0
        else:
            pad = abs(low) * 0.1
            low, high = low - pad, high + pad
    step = nice_step(high - low, max(count - 1, 1))
    first = math.floor(low / step + 1e-9) * step
    last = math.ceil(high / step - 1e-9) * step
    n = round((last - first) / step)
    # Rounded to the step's decimals: 0.1 + 0.2 shows as 0.3, not 0.30000000000000004.
    digits = max(0, -math.floor(math.log10(step)))
    return [round(first + i * step, digits) + 0.0 for i in range(n + 1)]

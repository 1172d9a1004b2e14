"""Axes use nice round ticks (SPEC §13): 1-2-5 steps that cover the data."""

from __future__ import annotations

import math

import pytest

from tenantry.charts.ticks import nice_ticks


@pytest.mark.parametrize(
    ("low", "high", "ticks"),
    [
        (0, 170, [0, 50, 100, 150, 200]),
        (0, 100, [0, 20, 40, 60, 80, 100]),
        (0, 10, [0, 2, 4, 6, 8, 10]),
        (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 0.3, [0, 0.1, 0.2, 0.3]),
        (-37, 12, [-40, -30, -20, -10, 0, 10, 20]),
        (-5, -1, [-5, -4, -3, -2, -1]),
        (95, 103, [94, 96, 98, 100, 102, 104]),
        (0, 2_500_000, [0, 500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000]),
        (170, 0, [0, 50, 100, 150, 200]),
    ],
)
def test_ticks_step_by_one_two_or_five_and_cover_the_data(low, high, ticks):
    assert nice_ticks(low, high) == pytest.approx(ticks)


@pytest.mark.parametrize(("low", "high"), [(0, 170), (3, 7919), (-0.004, 0.019), (1e6, 1.3e6), (-250, -3)])
def test_every_step_is_one_two_or_five_times_a_power_of_ten(low, high):
    ticks = nice_ticks(low, high)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in (1, 2, 5)
    assert ticks[0] <= low and ticks[-1] >= high
    assert 3 <= len(ticks) <= 8


@pytest.mark.parametrize("value", [0, 5, -200, 0.003])
def test_all_equal_values_still_get_an_axis_around_them(value):
    ticks = nice_ticks(value, value)
    assert ticks[0] <= value <= ticks[-1] and ticks[0] < ticks[-1]
    assert any(t == pytest.approx(value) for t in ticks)


@pytest.mark.parametrize(("low", "high"), [(-1e308, 1.7e308), (0, 1.7e308), (0, math.inf), (math.nan, 1)])
def test_ends_near_a_floats_limits_give_finite_ticks(low, high):
    ticks = nice_ticks(low, high)
    assert len(ticks) >= 2 and all(math.isfinite(t) for t in ticks)

"""SPEC §13: a dashboard's date ranges, in the client's own today; both ends included."""

from __future__ import annotations

from datetime import date

import pytest

from tenantry.klips.dates import previous_period, resolve
from tenantry.klips.spec import DATE_PRESETS

TODAY = date(2026, 12, 1)  # a Tuesday


@pytest.mark.parametrize(
    ("value", "today", "start", "end"),
    [
        ("today", TODAY, date(2026, 12, 1), date(2026, 12, 1)),
        ("yesterday", TODAY, date(2026, 11, 30), date(2026, 11, 30)),
        ("last_7_days", TODAY, date(2026, 11, 25), date(2026, 12, 1)),
        ("last_30_days", TODAY, date(2026, 11, 2), date(2026, 12, 1)),
        ("last_90_days", TODAY, date(2026, 9, 3), date(2026, 12, 1)),
        ("this_month", TODAY, date(2026, 12, 1), date(2026, 12, 31)),
        ("last_month", TODAY, date(2026, 11, 1), date(2026, 11, 30)),
        ("last_month", date(2026, 1, 15), date(2025, 12, 1), date(2025, 12, 31)),
        ("last_month", date(2026, 3, 31), date(2026, 2, 1), date(2026, 2, 28)),
        ("this_month", date(2028, 2, 10), date(2028, 2, 1), date(2028, 2, 29)),
        ("this_quarter", TODAY, date(2026, 10, 1), date(2026, 12, 31)),
        ("this_quarter", date(2026, 5, 20), date(2026, 4, 1), date(2026, 6, 30)),
        ("last_quarter", TODAY, date(2026, 7, 1), date(2026, 9, 30)),
        ("last_quarter", date(2026, 2, 1), date(2025, 10, 1), date(2025, 12, 31)),
        ("this_year", TODAY, date(2026, 1, 1), date(2026, 12, 31)),
        ("last_year", TODAY, date(2025, 1, 1), date(2025, 12, 31)),
        ("yesterday", date(2026, 1, 1), date(2025, 12, 31), date(2025, 12, 31)),
        ("2026-03-01..2026-03-31", TODAY, date(2026, 3, 1), date(2026, 3, 31)),
        ("2026-03-04..2026-03-04", TODAY, date(2026, 3, 4), date(2026, 3, 4)),
    ],
)
def test_a_date_range_means_these_days(value: str, today: date, start: date, end: date) -> None:
    assert resolve(value, today) == (start, end)


def test_every_preset_resolves_to_a_range_that_ends_no_earlier_than_it_starts() -> None:
    for preset in DATE_PRESETS:
        start, end = resolve(preset, TODAY)
        assert start <= end


@pytest.mark.parametrize(
    "value",
    [
        "last_week",
        "2026-03-01",
        "2026-03-31..2026-03-01",
        "2026-02-30..2026-03-01",
        "2026-3-1..2026-03-02",
        "",
    ],
)
def test_anything_else_is_refused_with_a_sentence(value: str) -> None:
    with pytest.raises(ValueError, match=r"\w+ \w+"):
        resolve(value, TODAY)


@pytest.mark.parametrize(
    ("start", "end", "before"),
    [
        (date(2026, 11, 25), date(2026, 12, 1), (date(2026, 11, 18), date(2026, 11, 24))),
        (date(2026, 3, 1), date(2026, 3, 31), (date(2026, 1, 29), date(2026, 2, 28))),
        (date(2026, 12, 1), date(2026, 12, 1), (date(2026, 11, 30), date(2026, 11, 30))),
        (date(2026, 1, 1), date(2026, 12, 31), (date(2025, 1, 1), date(2025, 12, 31))),
        (date(1, 1, 8), date(1, 1, 14), (date(1, 1, 1), date(1, 1, 7))),
        # No day comes before 0001-01-01: there is no previous period to compare with.
        (date(1, 1, 1), date(1, 1, 7), None),
        (date(1, 1, 5), date(1, 1, 14), None),
    ],
)
def test_the_previous_period_is_as_many_days_just_before(
    start: date, end: date, before: tuple[date, date] | None
) -> None:
    assert previous_period(start, end) == before

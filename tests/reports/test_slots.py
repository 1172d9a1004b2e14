"""Slot arithmetic of scheduled reports: local times across summer time, month ends and weeks."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from tenantry.reports.slots import Rule, latest_slot, next_slot


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NY = "America/New_York"
PARIS = "Europe/Paris"

# rule, after (UTC), the next slot (UTC)
NEXT = [
    # Daily at 09:00 in New York: 14:00 UTC in winter, 13:00 UTC in summer.
    (Rule("daily", time(9, 0), NY), "2026-03-07 15:00", "2026-03-08 13:00"),  # the day clocks go forward
    (Rule("daily", time(9, 0), NY), "2026-03-06 15:00", "2026-03-07 14:00"),
    (Rule("daily", time(9, 0), NY), "2026-10-31 14:00", "2026-11-01 14:00"),  # the day clocks go back
    # A time the change skips (02:30 on 8 March in New York) is sent just after the gap (03:30 EDT).
    (Rule("daily", time(2, 30), NY), "2026-03-08 00:00", "2026-03-08 07:30"),
    # A time that occurs twice (01:30 on 1 November) is sent once, at its first occurrence (EDT).
    (Rule("daily", time(1, 30), NY), "2026-11-01 00:00", "2026-11-01 05:30"),
    (Rule("daily", time(1, 30), NY), "2026-11-01 05:30", "2026-11-02 06:30"),
    # Exactly at a slot: the next one, not the same.
    (Rule("daily", time(12, 0), "UTC"), "2026-03-10 12:00", "2026-03-11 12:00"),
    (Rule("daily", time(12, 0), "UTC"), "2026-03-10 11:59", "2026-03-10 12:00"),
    # Weekly on Monday (0) at 08:00 Paris; 2026-03-30 is a Monday after Paris's change (29 March).
    (Rule("weekly", time(8, 0), PARIS, weekday=0), "2026-03-24 00:00", "2026-03-30 06:00"),
    (Rule("weekly", time(8, 0), PARIS, weekday=0), "2026-03-16 07:00", "2026-03-23 07:00"),
    # Sunday (6), from a Sunday after its time: a week later.
    (Rule("weekly", time(8, 0), "UTC", weekday=6), "2026-03-15 09:00", "2026-03-22 08:00"),
    # Monthly on the 28th: through February, and across a year's end.
    (Rule("monthly", time(7, 0), "UTC", day_of_month=28), "2026-01-28 07:00", "2026-02-28 07:00"),
    (Rule("monthly", time(7, 0), "UTC", day_of_month=28), "2026-12-29 00:00", "2027-01-28 07:00"),
    (Rule("monthly", time(23, 30), PARIS, day_of_month=1), "2026-02-15 00:00", "2026-03-01 22:30"),
    # A local date ahead of UTC: 00:30 on the 1st in Tokyo is the 31st (or 30th) in UTC.
    (Rule("monthly", time(0, 30), "Asia/Tokyo", day_of_month=1), "2026-04-15 00:00", "2026-04-30 15:30"),
]


@pytest.mark.parametrize(("rule", "after", "expected"), NEXT)
def test_the_next_slot_is_the_rules_local_time_placed_in_utc(rule, after, expected):
    assert next_slot(rule, utc(after)) == utc(expected)


LATEST = [
    # After an outage of three days, the latest slot that has come.
    (Rule("daily", time(9, 0), NY), "2026-03-10 12:00", "2026-03-09 13:00"),
    (Rule("daily", time(9, 0), NY), "2026-03-10 13:00", "2026-03-10 13:00"),  # at the slot itself
    (Rule("weekly", time(8, 0), "UTC", weekday=2), "2026-03-10 12:00", "2026-03-04 08:00"),
    (Rule("monthly", time(7, 0), "UTC", day_of_month=28), "2026-03-27 00:00", "2026-02-28 07:00"),
]


@pytest.mark.parametrize(("rule", "until", "expected"), LATEST)
def test_the_latest_slot_is_the_last_one_at_or_before_a_time(rule, until, expected):
    assert latest_slot(rule, utc(until)) == utc(expected)


def test_a_daily_rule_keeps_its_local_time_every_day_of_a_year_in_new_york():
    rule = Rule("daily", time(9, 0), NY)
    slot = utc("2026-01-01 00:00")
    for _ in range(365):
        slot = next_slot(rule, slot)
        local = slot.astimezone(ZoneInfo(NY))
        assert (local.hour, local.minute) == (9, 0)


def test_a_monthly_rule_is_due_once_a_month_for_two_years():
    rule = Rule("monthly", time(6, 15), PARIS, day_of_month=28)
    slot, months = utc("2026-01-01 00:00"), []
    for _ in range(24):
        slot = next_slot(rule, slot)
        months.append((slot.year, slot.month))
    assert len(set(months)) == 24

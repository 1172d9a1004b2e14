"""When a schedule's reports are due: its slots, computed in the schedule's own timezone.

Pure: no database, no clock. A slot is the instant (UTC) at which a report is due. Slots are
found on the local calendar and then placed in time with `zoneinfo`, so a daily report at 09:00
stays at 09:00 local time across a change to or from summer time. A local time that a change
skips (02:30 on the night clocks go forward) is sent at the same wall-clock distance after the
gap (03:30); a local time that occurs twice (the night clocks go back) is sent at its first
occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

FREQUENCIES = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Rule:
    """When a schedule is due: every day, every `weekday` (Monday 0), or every `day_of_month`
    (1–28, a day every month has), at `at` local time in `timezone` (an IANA name)."""

    frequency: str
    at: time
    timezone: str
    weekday: int | None = None
    day_of_month: int | None = None


def _matches(rule: Rule, day: date) -> bool:
    if rule.frequency == "daily":
        return True
    if rule.frequency == "weekly":
        return day.weekday() == rule.weekday
    return day.day == rule.day_of_month


def _instant(rule: Rule, day: date) -> datetime:
    """The UTC instant of `rule.at` on the local `day` (fold=0: the first of two, and a time in a
    gap is read with the offset before it, which lands after the gap)."""
    local = datetime.combine(day, rule.at, tzinfo=ZoneInfo(rule.timezone))
    return local.astimezone(UTC)


def _days_from(rule: Rule, start: date, step: int) -> date:
    """The nearest day from `start` (included) in direction `step` (+1/-1) that matches."""
    day = start
    # A monthly rule matches within 31 days, a weekly within 7; a daily at once.
    for _ in range(32):
        if _matches(rule, day):
            return day
        day += timedelta(days=step)
    raise ValueError("The rule matches no day.")  # pragma: no cover - rules are validated


def next_slot(rule: Rule, after: datetime) -> datetime:
    """The first slot strictly after `after`."""
    zone = ZoneInfo(rule.timezone)
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        day = _days_from(rule, day, +1)
        slot = _instant(rule, day)
        if slot > after:
            return slot
        day += timedelta(days=1)


def latest_slot(rule: Rule, until: datetime) -> datetime:
    """The last slot at or before `until`."""
    zone = ZoneInfo(rule.timezone)
    day = until.astimezone(zone).date() + timedelta(days=1)
    while True:
        day = _days_from(rule, day, -1)
        slot = _instant(rule, day)
        if slot <= until:
            return slot
        day -= timedelta(days=1)

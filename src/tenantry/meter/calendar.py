"""The meter's day: a calendar day in the timezone in force for the present month. Pure.

A partner's new timezone applies to the meter from the next month, as it does to statements
(`statements.compute.month_frame`): the month in progress keeps the days it began with, and the
next month begins where this one ends (so its first day may be a little longer or shorter). A
timezone changed back and forth within a month therefore never opens a fresh day, and no day is
ever counted twice.

The partner row keeps what this needs beside `timezone` (the latest one set), so the API-key lookup
reads it in the same statement: `previous_timezone`, in force until `timezone_from`, the instant
the month after the change begins. `tests/meter/test_calendar.py` checks that these days are the
days of the statements' month frames, whatever the changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class PartnerTimezones(Protocol):
    """The partner row's columns that the meter's days are made of."""

    @property
    def timezone(self) -> str: ...
    @property
    def previous_timezone(self) -> str | None: ...
    @property
    def timezone_from(self) -> datetime | None: ...


def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _first_of_month_before(day: date) -> date:
    return (day.replace(day=1) - timedelta(days=1)).replace(day=1)


def _midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(timezone)).astimezone(UTC)


# The latest day worked out for each calendar: (asked at, day, next day's start). Bounded; emptied
# when full (a calendar is a partner's timezones, so there are as many as partners at most).
_DAYS: dict[MeterCalendar, tuple[datetime, str, datetime]] = {}
_DAYS_KEPT = 4096


@dataclass(frozen=True)
class MeterCalendar:
    """A partner's meter days: `timezone`, and before `timezone_from` (if any) `previous_timezone`."""

    timezone: str
    previous_timezone: str | None = None
    timezone_from: datetime | None = None

    @classmethod
    def of(cls, partner: PartnerTimezones) -> MeterCalendar:
        return cls(partner.timezone, partner.previous_timezone, partner.timezone_from)

    def _present(self, now: datetime) -> tuple[str, date, datetime]:
        """The timezone of the month in progress at `now`, the meter's day, and when the month
        began (at its first midnight, or at the change it began with)."""
        if self.timezone_from is None or self.previous_timezone is None:
            timezone, first, began = self.timezone, None, None
        else:
            # A change takes effect at the first midnight of a month in the previous timezone.
            switch_day = self.timezone_from.astimezone(ZoneInfo(self.previous_timezone)).date()
            if now >= self.timezone_from:
                timezone, first, began = self.timezone, switch_day, self.timezone_from
            else:
                # The month in progress ends at the switch; it may itself have begun at an earlier
                # change, which is why its first day is kept too.
                timezone, first, began = self.previous_timezone, _first_of_month_before(switch_day), None
        local = now.astimezone(ZoneInfo(timezone)).date()
        if first is not None and local < first:
            # Between a change and the new timezone's first midnight: still the month's first day.
            local = first
        month_start = _midnight(local.replace(day=1), timezone)
        if began is not None and local.replace(day=1) == first:
            month_start = began
        return timezone, local, month_start

    def day(self, now: datetime) -> tuple[str, datetime]:
        """The meter's day at `now` (ISO date) and the instant (UTC) the next one begins."""
        # Every metered call asks this, and the answer changes once a day: the last answer of each
        # calendar holds from the instant it was worked out until the next day begins.
        known = _DAYS.get(self)
        if known is not None and known[0] <= now < known[2]:
            return known[1], known[2]
        timezone, local, _ = self._present(now)
        found = local.isoformat(), _midnight(local + timedelta(days=1), timezone)
        if len(_DAYS) >= _DAYS_KEPT:
            _DAYS.clear()
        _DAYS[self] = (now, *found)
        return found

    def timezone_at(self, now: datetime) -> str:
        """The timezone whose midnights end the meter's days at `now`."""
        return self._present(now)[0]

    def changed_to(self, timezone: str, now: datetime) -> MeterCalendar:
        """The calendar after the partner sets `timezone` at `now`: the month in progress keeps its
        timezone, and the new one takes over where that month ends."""
        present, local, month_start = self._present(now)
        # Statements lay a month out in the terms in force at its first instant, so a change made
        # at that very instant already applies to it.
        switch = now if now == month_start else _midnight(_first_of_next_month(local), present)
        if switch == self.timezone_from and self.previous_timezone is not None:
            # Another change at the instant the last one takes effect replaces it: the month still
            # begins at a midnight of the timezone before both (the one `timezone_from` is read in).
            return MeterCalendar(timezone, self.previous_timezone, switch)
        return MeterCalendar(timezone, present, switch)

"""Time as a port: the rules take a Clock so tests can move time without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Protocol
from zoneinfo import available_timezones


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock, optionally shifted by a fixed offset (for rehearsing future dates)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware datetime")
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


def as_utc(value: datetime) -> datetime:
    """Databases without timezone support hand back naive datetimes; they are stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Names in the timezone database that are no place's time: the server's own zone (a link the
# system may hold) and the database's placeholder. `available_timezones` already leaves out the
# `posix/` and `right/` (leap-second) copies and `posixrules`.
_NOT_PLACES = frozenset({"localtime", "Factory"})


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones() - _NOT_PLACES) | {"UTC"}


def is_timezone(name: str) -> bool:
    """Whether `name` is an IANA timezone a partner or a schedule may keep time in (Europe/Paris,
    UTC): a name of the database, never a path (zoneinfo would open it) nor the server's own."""
    return name in _timezones()

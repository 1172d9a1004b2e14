"""Statements of SPEC §7, computed from the status and allocation histories. Pure.

A month is cut into days at local midnight in the partner's timezone (so a day may last 23 or 25
hours across a daylight-saving change; a day that a timezone change swallowed lasts as the first day
left). A day is billable when the client was `active` at any
moment of it (the policy table says which status is billable); its quantity is the highest
allocation held while active during that day. Days with the same quantity and unit price form one
line, so `quantity × unit_price × billable_days / days_in_month` holds for every line; each line is
rounded to cents half up and the total is the sum of the lines.

Nothing here reads a clock or a database: the caller passes the histories, the terms and `now`.
"""

from __future__ import annotations

import bisect
import calendar
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from tenantry.errors import InvalidInput
from tenantry.policy import Capability, EffectiveStatus, allows

PRICED_RESOURCES: tuple[str, ...] = ("dashboards", "users")
CENT = Decimal("0.01")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = _MONTH.fullmatch(text)
        if match is None:
            raise InvalidInput(f"The month must be written YYYY-MM, such as 2026-03, not {text!r}.")
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12 or not 1970 <= year <= 9998:
            raise InvalidInput(f"{text} is not a month from 1970-01 to 9998-12.")
        return cls(year, month)

    @classmethod
    def of(cls, instant: datetime, timezone: str) -> Month:
        local = instant.astimezone(ZoneInfo(timezone))
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def days(self) -> int:
        return calendar.monthrange(self.year, self.month)[1]

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def local_midnight(self, day: int, timezone: str) -> datetime:
        return datetime(self.year, self.month, day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


@dataclass(frozen=True)
class Terms:
    """What a partner's statements are priced and cut with from `at` on: a snapshot per change,
    given in the order the changes were made."""

    at: datetime
    timezone: str
    currency: str
    prices: Mapping[str, Decimal]


@dataclass(frozen=True)
class Frame:
    """A month laid out as days: `bounds` holds days_in_month + 1 instants (UTC)."""

    month: Month
    timezone: str
    currency: str
    bounds: tuple[datetime, ...]

    @property
    def start(self) -> datetime:
        return self.bounds[0]

    @property
    def end(self) -> datetime:
        return self.bounds[-1]

    @property
    def days_in_month(self) -> int:
        return len(self.bounds) - 1

    @property
    def swallowed(self) -> int:
        """How many days at the month's start have no moment in them: a timezone change of 24 hours
        or more eastward (UTC-10 to UTC+14) begins the month after its second local midnight. Such a
        day lasts as the first day left does: it is billed as that day is, at that day's prices."""
        return swallowed_days(self.bounds)


def swallowed_days(bounds: Sequence[datetime]) -> int:
    """The days with no moment in them at the start of a month laid out in `bounds`."""
    count = 0
    while count + 2 < len(bounds) and bounds[count + 1] == bounds[0]:
        count += 1
    return count


def _in_force(terms: Sequence[Terms], instant: datetime) -> int:
    """Which snapshot is in force at `instant`: the last one made whose time has come.

    The first snapshot (the partner's creation) also covers all time before it. Snapshots are
    taken in the order they were made, so a clock set back between two changes cannot let an
    older change override a newer one.
    """
    chosen = 0
    for index in range(1, len(terms)):
        if terms[index].at <= instant:
            chosen = index
    return chosen


def month_frame(month: Month, terms: Sequence[Terms]) -> Frame:
    """Lay out `month` in the timezone (and currency) in force when it began.

    A timezone or currency change takes effect from the next month, so a month already begun (or
    past) never moves. The month after a timezone change begins where the previous one ended (its
    first day is a little longer or shorter), so no hour is billed twice or left out. A change of
    24 hours or more eastward leaves the month's first day with no moment in it (`Frame.swallowed`).
    """
    if not terms:
        raise ValueError("a partner always has at least one terms snapshot")
    changes = [t.at for t in terms[1:]]
    if not changes:
        current = terms[0]
        start = month.local_midnight(1, current.timezone)
    else:
        # Up to the month before the first change, the first snapshot's timezone covers everything.
        # From there each month begins where the previous one ended, in that month's timezone, and
        # is laid out in the timezone in force at that instant.
        walk = min(Month.of(min(changes), "UTC").previous(), month)
        start = walk.local_midnight(1, terms[0].timezone)
        current = terms[_in_force(terms, start)]
        last_change = max(changes)
        while walk < month:
            if start > last_change:
                # Nothing changes any more: the rest is calendar arithmetic in one timezone.
                start = month.local_midnight(1, current.timezone)
                break
            walk = walk.next()
            start = walk.local_midnight(1, current.timezone)
            current = terms[_in_force(terms, start)]
    end = month.next().local_midnight(1, current.timezone)
    inner = [max(month.local_midnight(day, current.timezone), start) for day in range(2, month.days + 1)]
    return Frame(month, current.timezone, current.currency, (start, *inner, end))


def month_at(instant: datetime, terms: Sequence[Terms]) -> Month:
    """The month `instant` falls in: the one whose frame holds it (in the timezone in force for
    that month, which a change made during it does not move)."""
    month = Month.of(instant, terms[-1].timezone)
    for _ in range(3):  # a change moves a month's bounds by at most a day and a few hours
        frame = month_frame(month, terms)
        if instant < frame.start:
            month = month.previous()
        elif instant >= frame.end:
            month = month.next()
        else:
            break
    return month


def day_prices(frame: Frame, terms: Sequence[Terms]) -> list[Mapping[str, Decimal]]:
    """The unit prices of each day: a price change applies from the day it was made.

    Prices set together with another currency wait for the month that currency takes effect.
    """
    opening = _in_force(terms, frame.start)
    prices = []
    # A swallowed day ends when the first day left ends.
    first_end = frame.bounds[frame.swallowed + 1]
    for day_end in frame.bounds[1:]:
        day_end = max(day_end, first_end)
        chosen = opening
        for index in range(opening + 1, len(terms)):
            if terms[index].at < day_end and terms[index].currency == frame.currency:
                chosen = index
        prices.append(terms[chosen].prices)
    return prices


@dataclass(frozen=True, slots=True)
class ClientHistory:
    """One client's histories, each sorted by time: (at, to_status) and (at, allocation), and
    when the client was deleted, if it was: from then on it counts for nothing."""

    client_id: int
    client_name: str
    statuses: Sequence[tuple[datetime, str]]
    allocations: Sequence[tuple[datetime, Mapping[str, int]]]
    deleted_at: datetime | None = None


# Asked of the policy table once: the stored status is enough, since an expired trial is still
# stored as `trial` and neither is billed.
_BILLABLE = frozenset(s.value for s in EffectiveStatus if allows(Capability.BILLABLE, s))


def _segments(
    history: ClientHistory, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, str | None, Mapping[str, int]]]:
    """The client's timeline inside [start, end): (from, to, status, allocation) per stretch.

    A deleted client's timeline ends at its deletion.
    """
    if history.deleted_at is not None:
        end = min(end, history.deleted_at)
    # One timeline of (instant, kind, index); at equal instants the later record of each kind wins.
    events = sorted(
        [(at, 0, i) for i, (at, _) in enumerate(history.statuses)]
        + [(at, 1, i) for i, (at, _) in enumerate(history.allocations)]
    )
    status: str | None = None
    allocation: Mapping[str, int] = {}
    position = 0
    while position < len(events):
        at = events[position][0]
        while position < len(events) and events[position][0] == at:
            _, kind, index = events[position]
            if kind == 0:
                status = history.statuses[index][1]
            else:
                allocation = history.allocations[index][1]
            position += 1
        segment_end = events[position][0] if position < len(events) else end
        lo, hi = max(at, start), min(segment_end, end)
        if lo < hi:
            yield lo, hi, status, allocation


def _days_touched(bounds: Sequence[datetime], lo: datetime, hi: datetime) -> range:
    return range(bisect.bisect_right(bounds, lo) - 1, bisect.bisect_left(bounds, hi))


def daily_quantities(
    history: ClientHistory, bounds: Sequence[datetime], until: datetime | None = None
) -> dict[str, list[int | None]]:
    """Per priced resource, each day's quantity, or None when the day is not billable.

    Only moments before `until` count (the amount to date); without it, the last known status and
    allocation continue to the end of the month (the projection).
    """
    days = len(bounds) - 1
    out: dict[str, list[int | None]] = {r: [None] * days for r in PRICED_RESOURCES}
    end = bounds[-1] if until is None else min(bounds[-1], until)
    for lo, hi, status, allocation in _segments(history, bounds[0], end):
        if status not in _BILLABLE:
            continue
        for resource in PRICED_RESOURCES:
            held = allocation.get(resource, 0)
            series = out[resource]
            for day in _days_touched(bounds, lo, hi):
                seen = series[day]
                if seen is None or held > seen:
                    series[day] = held
    swallowed = swallowed_days(bounds)
    for series in out.values():
        series[:swallowed] = [series[swallowed]] * swallowed
    return out


def daily_statuses(history: ClientHistory, bounds: Sequence[datetime], until: datetime) -> list[str | None]:
    """Each day's status for a sparkline: a billable status if held at any moment of the day (that is
    what the day costs), otherwise the status the day ended in; None before the client existed or
    after `until`."""
    out: list[str | None] = [None] * (len(bounds) - 1)
    for lo, hi, status, _ in _segments(history, bounds[0], min(bounds[-1], until)):
        for day in _days_touched(bounds, lo, hi):
            if out[day] not in _BILLABLE:
                out[day] = status
    swallowed = swallowed_days(bounds)
    out[:swallowed] = [out[swallowed]] * swallowed
    return out


@dataclass(slots=True)
class Line:
    client_id: int
    client_name: str
    resource: str
    quantity: int
    unit_price: Decimal
    days_in_month: int
    billable_days: int = 0
    projected_billable_days: int = 0
    first_day: int = 0

    def _amount(self, days: int) -> Decimal:
        exact = self.quantity * self.unit_price * days / Decimal(self.days_in_month)
        return exact.quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def amount(self) -> Decimal:
        """SPEC §7's amount, over the billable days so far (the whole month once it has ended)."""
        return self._amount(self.billable_days)

    @property
    def projected_amount(self) -> Decimal:
        """The amount if every client keeps its present status and allocation to the month's end."""
        return self._amount(self.projected_billable_days)


@dataclass
class Statement:
    month: Month
    timezone: str
    currency: str
    days_in_month: int
    as_of: datetime
    complete: bool
    lines: list[Line] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0.00"))

    @property
    def projected_total(self) -> Decimal:
        return sum((line.projected_amount for line in self.lines), Decimal("0.00"))


def client_lines(
    history: ClientHistory,
    frame: Frame,
    prices: Sequence[Mapping[str, Decimal]],
    now: datetime,
) -> list[Line]:
    """The client's lines: one per resource, quantity and unit price, with days to date and projected."""
    projected = daily_quantities(history, frame.bounds)
    to_date = daily_quantities(history, frame.bounds, now) if now < frame.end else projected
    # (resource, quantity, unit price) -> [billable days, projected billable days, first day]
    tally: dict[tuple[str, int, Decimal], list[int]] = {}
    for resource in PRICED_RESOURCES:
        for column, series in ((1, projected[resource]), (0, to_date[resource])):
            for day, quantity in enumerate(series):
                if not quantity:  # not billable, or nothing allocated
                    continue
                key = (resource, quantity, prices[day][resource])
                entry = tally.get(key)
                if entry is None:
                    entry = tally[key] = [0, 0, day]
                entry[column] += 1
    lines = [
        Line(
            history.client_id,
            history.client_name,
            resource,
            quantity,
            price,
            frame.days_in_month,
            billable_days=days,
            projected_billable_days=projected_days,
            first_day=first_day,
        )
        for (resource, quantity, price), (days, projected_days, first_day) in tally.items()
    ]
    return sorted(lines, key=lambda line: (PRICED_RESOURCES.index(line.resource), line.first_day))


def build_statement(
    month: Month, terms: Sequence[Terms], clients: Iterable[ClientHistory], now: datetime
) -> Statement:
    frame = month_frame(month, terms)
    prices = day_prices(frame, terms)
    statement = Statement(
        month=month,
        timezone=frame.timezone,
        currency=frame.currency,
        days_in_month=frame.days_in_month,
        as_of=min(now, frame.end),
        complete=now >= frame.end,
    )
    for history in sorted(clients, key=lambda h: h.client_id):
        statement.lines.extend(client_lines(history, frame, prices, now))
    return statement

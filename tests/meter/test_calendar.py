"""The meter's days are the statements' days: a new timezone applies from the next month."""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.meter.calendar import MeterCalendar
from tenantry.statements.compute import Month, Terms, month_frame

ZONES = [
    "UTC",
    "Pacific/Kiritimati",  # UTC+14
    "Etc/GMT+12",  # UTC-12
    "America/New_York",
    "Australia/Lord_Howe",  # a half-hour daylight-saving shift
    "Asia/Kathmandu",  # UTC+5:45
    "America/St_Johns",
]
CREATED = datetime(2026, 1, 1, tzinfo=UTC)
PRICES = {"dashboards": Decimal("10.00"), "users": Decimal("5.00")}


def statement_day(terms: list[Terms], instant: datetime) -> tuple[str, datetime]:
    """The day of `instant` in the statements' month frames, and the instant the next one begins."""
    candidates = {Month.of(instant, zone) for zone in ZONES}
    candidates |= {m.next() for m in candidates} | {m.previous() for m in candidates}
    for month in sorted(candidates):
        frame = month_frame(month, terms)
        if frame.start <= instant < frame.end:
            day = bisect.bisect_right(frame.bounds, instant)
            return f"{month}-{day:02d}", frame.bounds[day]
    raise AssertionError(f"no month frame holds {instant}")


def replay(first: str, changes: list[tuple[datetime, str]]) -> tuple[list[Terms], MeterCalendar]:
    """Terms snapshots as statements keep them, and the meter's calendar as the partner row keeps it."""
    terms = [Terms(CREATED, first, "USD", PRICES)]
    calendar = MeterCalendar(first)
    for at, zone in changes:
        terms.append(Terms(at, zone, "USD", PRICES))
        if zone != calendar.timezone:
            calendar = calendar.changed_to(zone, at)
    return terms, calendar


def local_midnight(month: int, day: int, zone: str, microseconds: int) -> datetime:
    midnight = datetime(2026, month, day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    return midnight + timedelta(microseconds=microseconds)


instants = st.one_of(
    st.integers(0, 150 * 86_400).map(lambda s: CREATED + timedelta(seconds=s)),
    # Exactly at (or a breath away from) a local midnight, where off-by-one mistakes live.
    st.tuples(st.integers(1, 5), st.integers(1, 28), st.sampled_from(ZONES), st.sampled_from([-1, 0, 1])).map(
        lambda t: local_midnight(*t)
    ),
)


class TestTheMeterDayIsTheStatementDay:
    @settings(max_examples=300, deadline=None)
    @given(
        first=st.sampled_from(ZONES),
        changes=st.lists(st.tuples(instants, st.sampled_from(ZONES)), max_size=6),
        later=st.lists(st.integers(0, 70 * 86_400), min_size=1, max_size=4),
    )
    def test_whatever_the_changes_every_instant_after_them_falls_on_the_statements_day(
        self, first, changes, later
    ):
        changes = sorted(changes)
        terms, calendar = replay(first, changes)
        last = changes[-1][0] if changes else CREATED
        for offset in later:
            instant = last + timedelta(seconds=offset)
            assert calendar.day(instant) == statement_day(terms, instant)

    @settings(max_examples=100, deadline=None)
    @given(
        first=st.sampled_from(ZONES),
        changes=st.lists(st.tuples(instants, st.sampled_from(ZONES)), max_size=4),
    )
    def test_days_follow_one_another_at_every_boundary_without_a_gap_or_a_repeat(self, first, changes):
        changes = sorted(changes)
        terms, calendar = replay(first, changes)
        instant = changes[-1][0] if changes else CREATED
        seen: list[str] = []
        for _ in range(70):
            day, next_day = calendar.day(instant)
            assert (day, next_day) == statement_day(terms, instant)
            assert calendar.day(next_day - timedelta(microseconds=1))[0] == day
            seen.append(day)
            instant = next_day
        assert seen == sorted(set(seen)), "a day came back"


class TestCyclingTheTimezone:
    def test_changes_within_a_month_keep_todays_day_until_the_month_ends(self):
        calendar = MeterCalendar("UTC")
        now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
        for zone in ("Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Kiritimati"):
            calendar = calendar.changed_to(zone, now)
            assert calendar.day(now) == ("2026-03-10", datetime(2026, 3, 11, tzinfo=UTC))
        # March ends at midnight UTC; April is counted in Kiritimati's days (UTC+14) from there.
        assert calendar.day(datetime(2026, 3, 31, 23, 59, tzinfo=UTC))[0] == "2026-03-31"
        assert calendar.day(datetime(2026, 4, 1, 0, 0, tzinfo=UTC)) == (
            "2026-04-01",
            datetime(2026, 4, 1, 10, 0, tzinfo=UTC),
        )
        assert calendar.day(datetime(2026, 4, 1, 10, 0, tzinfo=UTC))[0] == "2026-04-02"


class TestChangesAtTheSameInstant:
    def test_the_last_of_several_changes_at_a_months_first_instant_decides_that_month(self):
        # Found by the property above: UTC, then three changes at 2026-01-01 00:00 UTC, the last
        # back to UTC. The month keeps UTC's days; no change is deferred to February.
        changes = [(CREATED, "Etc/GMT+12"), (CREATED, "Pacific/Kiritimati"), (CREATED, "UTC")]
        terms, calendar = replay("UTC", changes)
        for instant in (CREATED, CREATED + timedelta(hours=10), CREATED + timedelta(days=40)):
            assert calendar.day(instant) == statement_day(terms, instant)
        assert calendar.day(CREATED) == ("2026-01-01", CREATED + timedelta(days=1))

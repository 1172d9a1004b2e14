"""The statement arithmetic of SPEC §7, on histories built directly (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.errors import InvalidInput
from tenantry.statements.compute import (
    PRICED_RESOURCES,
    ClientHistory,
    Month,
    Terms,
    build_statement,
    daily_quantities,
    daily_statuses,
    day_prices,
    month_frame,
)

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
AFTERWARDS = datetime(2030, 1, 1, tzinfo=UTC)
PRICES = {"dashboards": Decimal("10.00"), "users": Decimal("5.00")}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def terms(timezone: str = "UTC", prices=PRICES, currency: str = "USD", at: datetime = LONG_AGO) -> Terms:
    return Terms(at, timezone, currency, prices)


def history(statuses, allocations=None, client_id: int = 1) -> ClientHistory:
    allocations = allocations or [(statuses[0][0], {"dashboards": 1, "users": 1})]
    return ClientHistory(client_id, f"Client {client_id}", statuses, allocations)


def billable_days(month: str, timezone: str, statuses, until: datetime | None = None) -> list[int]:
    frame = month_frame(Month.parse(month), [terms(timezone)])
    days = daily_quantities(history(statuses), frame.bounds, until)["dashboards"]
    return [day + 1 for day, quantity in enumerate(days) if quantity is not None]


class TestMonths:
    @pytest.mark.parametrize(
        ("month", "days"),
        [("2026-02", 28), ("2028-02", 29), ("2026-04", 30), ("2026-03", 31), ("2026-12", 31)],
    )
    def test_a_month_has_as_many_days_as_the_calendar_says(self, month, days):
        assert month_frame(Month.parse(month), [terms()]).days_in_month == days

    @pytest.mark.parametrize(
        "text", ["2026-13", "2026-00", "2026-3", "26-03", "March", "1969-12", "9999-12", ""]
    )
    def test_a_malformed_month_is_refused_with_a_reason(self, text):
        with pytest.raises(InvalidInput) as refused:
            Month.parse(text)
        assert "month" in refused.value.detail

    @pytest.mark.parametrize(
        ("timezone", "month", "day", "hours"),
        [
            ("Europe/Paris", "2026-03", 29, 23),  # clocks go forward
            ("Europe/Paris", "2026-10", 25, 25),  # clocks go back
            ("America/New_York", "2026-03", 8, 23),
            ("America/New_York", "2026-11", 1, 25),
            ("UTC", "2026-03", 29, 24),
        ],
    )
    def test_a_day_runs_from_local_midnight_to_local_midnight(self, timezone, month, day, hours):
        frame = month_frame(Month.parse(month), [terms(timezone)])
        assert frame.bounds[day] - frame.bounds[day - 1] == timedelta(hours=hours)

    def test_a_month_starts_at_local_midnight(self):
        frame = month_frame(Month.parse("2026-04"), [terms("Asia/Tokyo")])
        assert frame.start == utc(2026, 3, 31, 15)
        assert frame.end == utc(2026, 4, 30, 15)


# (timezone, month, [(at, status), ...], billable days of the month)
BILLABLE_DAYS = [
    # Month boundaries: active for an hour around midnight UTC.
    ("UTC", "2026-03", [(utc(2026, 3, 31, 23, 30), "active"), (utc(2026, 4, 1, 0, 30), "disabled")], [31]),
    ("UTC", "2026-04", [(utc(2026, 3, 31, 23, 30), "active"), (utc(2026, 4, 1, 0, 30), "disabled")], [1]),
    # The same hour is April 1st in Paris and March 31st in New York.
    (
        "Europe/Paris",
        "2026-03",
        [(utc(2026, 3, 31, 23, 30), "active"), (utc(2026, 4, 1, 0, 30), "disabled")],
        [],
    ),
    (
        "Europe/Paris",
        "2026-04",
        [(utc(2026, 3, 31, 23, 30), "active"), (utc(2026, 4, 1, 0, 30), "disabled")],
        [1],
    ),
    (
        "America/New_York",
        "2026-03",
        [(utc(2026, 3, 31, 23, 30), "active"), (utc(2026, 4, 1, 0, 30), "disabled")],
        [31],
    ),
    (
        "America/New_York",
        "2026-04",
        [(utc(2026, 3, 31, 23, 30), "active"), (utc(2026, 4, 1, 0, 30), "disabled")],
        [],
    ),
    # Daylight saving in Paris: after March 29th, local midnight is 22:00 UTC, not 23:00.
    ("Europe/Paris", "2026-03", [(utc(2026, 3, 29, 22, 30), "active")], [30, 31]),
    (
        "Europe/Paris",
        "2026-03",
        [(utc(2026, 3, 1), "active"), (utc(2026, 3, 28, 23, 30), "disabled")],
        list(range(1, 30)),
    ),
    ("Europe/Paris", "2026-10", [(utc(2026, 10, 25, 23, 30), "active")], list(range(26, 32))),
    # Active up to the very instant a day starts is not a moment of that day.
    ("UTC", "2026-03", [(utc(2026, 3, 5, 12), "active"), (utc(2026, 3, 7), "disabled")], [5, 6]),
    # A minute is enough.
    ("UTC", "2026-03", [(utc(2026, 3, 5, 12), "active"), (utc(2026, 3, 5, 12, 1), "disabled")], [5]),
    # Statuses that are not billed.
    ("UTC", "2026-03", [(utc(2026, 2, 1), "setup"), (utc(2026, 3, 10), "trial")], []),
    ("UTC", "2026-03", [(utc(2026, 2, 1), "active"), (utc(2026, 2, 20), "disabled")], []),
    # Active since before the month and still active: every day.
    ("UTC", "2026-02", [(utc(2026, 1, 15), "active")], list(range(1, 29))),
    # Setup -> Trial -> Active -> Disabled -> Active inside one month.
    (
        "UTC",
        "2026-03",
        [
            (utc(2026, 3, 1, 9), "setup"),
            (utc(2026, 3, 3, 10), "trial"),
            (utc(2026, 3, 12, 15), "active"),
            (utc(2026, 3, 20, 8), "disabled"),
            (utc(2026, 3, 25, 18), "active"),
        ],
        [*range(12, 21), *range(25, 32)],
    ),
]


class TestBillableDays:
    @pytest.mark.parametrize(("timezone", "month", "statuses", "expected"), BILLABLE_DAYS)
    def test_a_day_is_billable_when_the_client_was_active_at_any_moment_of_it(
        self, timezone, month, statuses, expected
    ):
        assert billable_days(month, timezone, statuses) == expected

    def test_the_amount_to_date_counts_only_moments_before_now(self):
        statuses = [(utc(2026, 3, 10, 12), "active")]
        assert billable_days("2026-03", "UTC", statuses, until=utc(2026, 3, 15, 12)) == list(range(10, 16))
        assert billable_days("2026-03", "UTC", statuses, until=utc(2026, 3, 10, 12)) == []


class TestQuantities:
    def test_a_days_quantity_is_the_highest_allocation_held_while_active(self):
        h = history(
            [(utc(2026, 3, 10, 12), "active"), (utc(2026, 3, 20, 12), "disabled")],
            [
                (utc(2026, 3, 10, 12), {"dashboards": 2, "users": 1}),
                (utc(2026, 3, 15, 10), {"dashboards": 4, "users": 1}),
                (utc(2026, 3, 15, 16), {"dashboards": 3, "users": 1}),
                # Raised while disabled: not held while active, so never billed.
                (utc(2026, 3, 20, 13), {"dashboards": 9, "users": 9}),
            ],
        )
        frame = month_frame(Month.parse("2026-03"), [terms()])
        days = daily_quantities(h, frame.bounds)["dashboards"]
        assert days[9:20] == [2, 2, 2, 2, 2, 4, 3, 3, 3, 3, 3]
        assert days[20:] == [None] * 11

    def test_an_allocation_given_in_the_same_instant_as_activation_counts_from_that_instant(self):
        at = utc(2026, 3, 10, 12)
        h = history(
            [(at, "setup"), (at, "active")],
            [(at, {"dashboards": 0, "users": 0}), (at, {"dashboards": 3, "users": 2})],
        )
        statement = build_statement(Month.parse("2026-03"), [terms()], [h], AFTERWARDS)
        assert [(line.resource, line.quantity, line.billable_days) for line in statement.lines] == [
            ("dashboards", 3, 22),
            ("users", 2, 22),
        ]

    def test_quantity_changes_make_one_line_each_so_the_formula_holds_per_line(self):
        h = history(
            [(utc(2026, 3, 1), "active")],
            [
                (utc(2026, 3, 1), {"dashboards": 2, "users": 1}),
                (utc(2026, 3, 11, 9), {"dashboards": 5, "users": 1}),
            ],
        )
        statement = build_statement(Month.parse("2026-03"), [terms()], [h], AFTERWARDS)
        assert [
            (line.resource, line.quantity, line.billable_days, str(line.amount)) for line in statement.lines
        ] == [
            ("dashboards", 2, 10, "6.45"),  # 2 × 10.00 × 10 / 31 = 6.4516…
            ("dashboards", 5, 21, "33.87"),  # 5 × 10.00 × 21 / 31 = 33.870…
            ("users", 1, 31, "5.00"),
        ]
        assert statement.total == Decimal("45.32")


class TestAmounts:
    @pytest.mark.parametrize(
        ("month", "amount"),
        [("2026-02", "3.57"), ("2028-02", "3.45"), ("2026-04", "3.33"), ("2026-03", "3.23")],
    )
    def test_ten_days_cost_ten_days_worth_of_the_month(self, month, amount):
        start = Month.parse(month).local_midnight(1, "UTC")
        h = history([(start, "active"), (start + timedelta(days=10), "disabled")])
        statement = build_statement(Month.parse(month), [terms()], [h], AFTERWARDS)
        assert str(statement.lines[0].amount) == amount

    @pytest.mark.parametrize("month", ["2026-02", "2028-02", "2026-04", "2026-03"])
    def test_a_whole_month_costs_the_monthly_price(self, month):
        h = history([(LONG_AGO, "active")], [(LONG_AGO, {"dashboards": 3, "users": 7})])
        statement = build_statement(Month.parse(month), [terms()], [h], AFTERWARDS)
        assert [str(line.amount) for line in statement.lines] == ["30.00", "35.00"]
        assert statement.complete

    def test_lines_are_rounded_half_up_to_cents(self):
        prices = {"dashboards": Decimal("0.07"), "users": Decimal("0.00")}
        start = utc(2026, 2, 1)
        h = history([(start, "active"), (start + timedelta(days=2), "disabled")])
        statement = build_statement(Month.parse("2026-02"), [terms(prices=prices)], [h], AFTERWARDS)
        assert str(statement.lines[0].amount) == "0.01"  # 0.07 × 2 / 28 = 0.005

    def test_a_month_in_progress_shows_the_amount_to_date_and_the_projection(self):
        h = history([(utc(2026, 3, 10, 12), "active")])
        now = utc(2026, 3, 15, 12)
        statement = build_statement(Month.parse("2026-03"), [terms()], [h], now)
        dashboards = statement.lines[0]
        assert (dashboards.billable_days, str(dashboards.amount)) == (6, "1.94")
        assert (dashboards.projected_billable_days, str(dashboards.projected_amount)) == (22, "7.10")
        assert not statement.complete
        assert statement.as_of == now
        assert str(statement.projected_total) == "10.65"  # 7.10 + 3.55


class TestTerms:
    def test_a_price_change_applies_from_the_day_it_is_made(self):
        history_of_terms = [
            terms(),
            terms(prices={"dashboards": Decimal("20.00"), "users": Decimal("5.00")}, at=utc(2026, 3, 20, 10)),
        ]
        prices = day_prices(month_frame(Month.parse("2026-03"), history_of_terms), history_of_terms)
        assert [p["dashboards"] for p in prices] == [Decimal("10.00")] * 19 + [Decimal("20.00")] * 12

    def test_a_currency_change_and_its_prices_wait_for_the_next_month(self):
        euros = {"dashboards": Decimal("9.00"), "users": Decimal("4.00")}
        history_of_terms = [terms(), terms(prices=euros, currency="EUR", at=utc(2026, 3, 20, 10))]
        march = month_frame(Month.parse("2026-03"), history_of_terms)
        april = month_frame(Month.parse("2026-04"), history_of_terms)
        assert march.currency == "USD"
        assert {p["dashboards"] for p in day_prices(march, history_of_terms)} == {Decimal("10.00")}
        assert april.currency == "EUR"
        assert {p["dashboards"] for p in day_prices(april, history_of_terms)} == {Decimal("9.00")}

    def test_a_timezone_change_applies_from_the_next_month_which_starts_where_the_last_ended(self):
        history_of_terms = [terms("UTC"), terms("Asia/Tokyo", at=utc(2026, 3, 20))]
        march = month_frame(Month.parse("2026-03"), history_of_terms)
        april = month_frame(Month.parse("2026-04"), history_of_terms)
        may = month_frame(Month.parse("2026-05"), history_of_terms)
        assert (march.timezone, march.start, march.end) == ("UTC", utc(2026, 3, 1), utc(2026, 4, 1))
        assert (april.timezone, april.start) == ("Asia/Tokyo", utc(2026, 4, 1))
        assert april.bounds[1] == utc(2026, 4, 1, 15)  # April 2nd, Tokyo midnight
        assert april.end == may.start == utc(2026, 4, 30, 15)

    def test_a_later_change_wins_even_when_the_clock_was_set_back_before_it_was_made(self):
        created = terms(at=utc(2026, 11, 1))
        cheaper = terms(prices={"dashboards": Decimal("8.00"), "users": Decimal("4.00")}, at=utc(2026, 3, 10))
        history_of_terms = [created, cheaper]
        for month in ("2026-03", "2026-11", "2027-01"):
            frame = month_frame(Month.parse(month), history_of_terms)
            assert day_prices(frame, history_of_terms)[-1]["dashboards"] == Decimal("8.00"), month
        february = month_frame(Month.parse("2026-02"), history_of_terms)
        assert day_prices(february, history_of_terms)[-1]["dashboards"] == Decimal("10.00")

    @pytest.mark.parametrize(
        ("before", "first_day_hours"),
        [
            ("Pacific/Honolulu", 24),  # UTC-10 to UTC+14: Kiritimati's April 2nd has begun already
            ("Pacific/Pago_Pago", 23),  # UTC-11 to UTC+14: and an hour of it has gone
        ],
    )
    def test_a_change_of_a_day_or_more_eastward_leaves_the_months_first_day_with_no_moment_in_it(
        self, before, first_day_hours
    ):
        history_of_terms = [terms(before), terms("Pacific/Kiritimati", at=utc(2026, 3, 20))]
        april = month_frame(Month.parse("2026-04"), history_of_terms)
        assert (april.days_in_month, april.swallowed) == (30, 1)
        assert april.bounds[0] == april.bounds[1]
        assert april.bounds[2] - april.bounds[1] == timedelta(hours=first_day_hours)
        assert month_frame(Month.parse("2026-05"), history_of_terms).swallowed == 0
        assert month_frame(Month.parse("2026-03"), history_of_terms).swallowed == 0

    def test_months_before_the_first_snapshot_use_its_terms(self):
        frame = month_frame(Month.parse("2025-01"), [terms("Europe/Paris", at=utc(2026, 3, 10))])
        assert frame.start == utc(2024, 12, 31, 23)


# A history the product can produce: Setup or Trial first, then the allowed transitions.
NEXT = {
    "setup": ["trial", "active", "disabled"],
    "trial": ["active", "disabled"],
    "active": ["disabled"],
    "disabled": ["active"],
}


@st.composite
def histories(draw):
    month = draw(st.sampled_from(["2026-02", "2028-02", "2026-03", "2026-04", "2026-10", "2026-11"]))
    timezone = draw(
        st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Pacific/Auckland"])
    )
    start = Month.parse(month).local_midnight(1, "UTC") - timedelta(days=3)
    offsets = sorted(draw(st.lists(st.integers(0, 36 * 24 * 60), min_size=1, max_size=12)))
    status = draw(st.sampled_from(["setup", "trial", "active"]))
    statuses = [(start + timedelta(minutes=offsets[0]), status)]
    for offset in offsets[1:]:
        status = draw(st.sampled_from(NEXT[status]))
        statuses.append((start + timedelta(minutes=offset), status))
    allocation_offsets = sorted(draw(st.lists(st.integers(0, 36 * 24 * 60), max_size=8)))
    allocations = [(statuses[0][0], {"dashboards": 1, "users": 1})] + [
        (
            start + timedelta(minutes=o),
            {"dashboards": draw(st.integers(0, 9)), "users": draw(st.integers(0, 9))},
        )
        for o in allocation_offsets
    ]
    allocations.sort(key=lambda item: item[0])
    prices = {
        "dashboards": Decimal(draw(st.integers(0, 99999))) / 100,
        "users": Decimal(draw(st.integers(0, 99999))) / 100,
    }
    return month, timezone, ClientHistory(1, "C", statuses, allocations), prices


def brute_force_day(history: ClientHistory, day_start: datetime, day_end: datetime) -> int | None:
    """The day's quantity from first principles: look at the day's start and every change inside it."""
    instants = [day_start] + [
        at for at, _ in [*history.statuses, *history.allocations] if day_start < at < day_end
    ]
    best = None
    for instant in instants:
        status = [s for at, s in history.statuses if at <= instant]
        allocation = [a for at, a in history.allocations if at <= instant]
        if status and status[-1] == "active":
            held = allocation[-1]["dashboards"] if allocation else 0
            best = held if best is None else max(best, held)
    return best


class TestSumOverDays:
    @settings(max_examples=300, deadline=None)
    @given(histories())
    def test_the_sum_over_days_equals_the_monthly_total(self, case):
        month, timezone, history, prices = case
        history_of_terms = [terms(timezone, prices)]
        frame = month_frame(Month.parse(month), history_of_terms)
        statement = build_statement(Month.parse(month), history_of_terms, [history], AFTERWARDS)
        daily = daily_quantities(history, frame.bounds)
        by_days = sum(
            Fraction(quantity or 0) * Fraction(prices[resource]) / frame.days_in_month
            for resource in PRICED_RESOURCES
            for quantity in daily[resource]
        )
        by_lines = sum(
            Fraction(line.quantity) * Fraction(line.unit_price) * line.billable_days / line.days_in_month
            for line in statement.lines
        )
        assert by_days == by_lines
        assert abs(Fraction(statement.total) - by_days) <= Fraction(1, 200) * len(statement.lines)
        assert statement.total == sum((line.amount for line in statement.lines), Decimal(0))

    @settings(max_examples=300, deadline=None)
    @given(histories())
    def test_each_days_quantity_matches_a_brute_force_reading_of_the_history(self, case):
        month, timezone, history, _ = case
        frame = month_frame(Month.parse(month), [terms(timezone)])
        daily = daily_quantities(history, frame.bounds)["dashboards"]
        expected = [
            brute_force_day(history, a, b) for a, b in zip(frame.bounds, frame.bounds[1:], strict=False)
        ]
        assert daily == expected


class TestADaySwallowedByATimezoneChange:
    """UTC-10 to UTC+14 from April: April begins at Honolulu's midnight, when Kiritimati's April 2nd
    has begun. April 1st has no moment in it; it lasts as April 2nd does, and is billed as it is."""

    TERMS = [terms("Pacific/Honolulu"), terms("Pacific/Kiritimati", at=utc(2026, 3, 20))]
    APRIL = Month.parse("2026-04")
    START = utc(2026, 4, 1, 10)  # Honolulu's April 1st midnight
    SECOND_DAY_ENDS = utc(2026, 4, 2, 10)  # Kiritimati's April 3rd midnight

    def lines(self, statuses, allocations=None, terms_=None, now=AFTERWARDS):
        statement = build_statement(self.APRIL, terms_ or self.TERMS, [history(statuses, allocations)], now)
        return [
            (line.resource, line.quantity, line.unit_price, line.billable_days) for line in statement.lines
        ]

    @pytest.mark.parametrize(
        ("activated", "billed_days"),
        [
            (LONG_AGO, 30),  # active all month: every day of it
            (START + timedelta(hours=5), 30),  # during the first day left: the swallowed one too
            (SECOND_DAY_ENDS - timedelta(microseconds=1), 30),
            (SECOND_DAY_ENDS, 28),  # from April 3rd on
        ],
    )
    def test_the_swallowed_day_is_billed_when_the_first_day_left_is(self, activated, billed_days):
        assert self.lines([(activated, "active")]) == [
            ("dashboards", 1, Decimal("10.00"), billed_days),
            ("users", 1, Decimal("5.00"), billed_days),
        ]

    def test_the_swallowed_day_takes_the_highest_allocation_of_the_first_day_left(self):
        allocations = [
            (LONG_AGO, {"dashboards": 1, "users": 1}),
            (self.START + timedelta(hours=3), {"dashboards": 4, "users": 1}),
            (self.START + timedelta(hours=6), {"dashboards": 2, "users": 1}),
        ]
        assert self.lines([(LONG_AGO, "active")], allocations) == [
            ("dashboards", 4, Decimal("10.00"), 2),
            ("dashboards", 2, Decimal("10.00"), 28),
            ("users", 1, Decimal("5.00"), 30),
        ]

    def test_a_price_changed_during_the_first_day_left_applies_to_the_swallowed_day_too(self):
        cheaper = {"dashboards": Decimal("8.00"), "users": Decimal("5.00")}
        history_of_terms = [
            *self.TERMS,
            terms("Pacific/Kiritimati", cheaper, at=self.START + timedelta(hours=2)),
        ]
        frame = month_frame(self.APRIL, history_of_terms)
        assert [p["dashboards"] for p in day_prices(frame, history_of_terms)] == [Decimal("8.00")] * 30
        assert self.lines([(LONG_AGO, "active")], terms_=history_of_terms) == [
            ("dashboards", 1, Decimal("8.00"), 30),
            ("users", 1, Decimal("5.00"), 30),
        ]

    def test_to_date_the_swallowed_day_counts_once_the_first_day_left_has_begun(self):
        assert self.lines([(LONG_AGO, "active")], now=self.START) == [
            ("dashboards", 1, Decimal("10.00"), 0),
            ("users", 1, Decimal("5.00"), 0),
        ]
        assert self.lines([(LONG_AGO, "active")], now=self.START + timedelta(minutes=1)) == [
            ("dashboards", 1, Decimal("10.00"), 2),
            ("users", 1, Decimal("5.00"), 2),
        ]

    def test_the_sparkline_shows_the_swallowed_day_as_the_first_day_left(self):
        frame = month_frame(self.APRIL, self.TERMS)
        statuses = [(LONG_AGO, "trial"), (self.START + timedelta(hours=5), "active")]
        days = daily_statuses(history(statuses), frame.bounds, AFTERWARDS)
        assert days[:3] == ["active", "active", "active"]

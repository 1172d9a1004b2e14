"""SPEC §13: a klip's query over its data source's rows, and the check that refuses a query or a
mapping that does not fit the source."""

from __future__ import annotations

import json
import threading
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from tenantry.klips.query import QueryCache, QueryError, Table, check, columns_of, run
from tenantry.klips.spec import Condition, KlipBody, Query

SALES: list[dict[str, Any]] = [
    {
        "day": "2026-03-02",
        "at": "2026-03-02T09:00:00Z",
        "region": "north",
        "amount": 10,
        "units": 1,
        "paid": True,
    },
    {
        "day": "2026-03-04",
        "at": "2026-03-04T23:30:00Z",
        "region": "south",
        "amount": 20.5,
        "units": 2,
        "paid": False,
    },
    {
        "day": "2026-03-08",
        "at": "2026-03-08T10:00:00Z",
        "region": "north",
        "amount": None,
        "units": 3,
        "paid": True,
    },
    {
        "day": "2026-03-09",
        "at": "2026-03-09T00:00:00Z",
        "region": "North",
        "amount": 40,
        "units": 4,
        "paid": None,
    },
    {
        "day": "2026-04-01",
        "at": "2026-04-01T12:00:00Z",
        "region": "east",
        "amount": 30,
        "units": 5,
        "paid": True,
    },
    {
        "day": "2026-07-15",
        "at": "2026-07-15T12:00:00Z",
        "region": None,
        "amount": 5,
        "units": 6,
        "paid": False,
    },
    {
        "day": "2027-01-01",
        "at": "2027-01-01T00:00:00Z",
        "region": "south",
        "amount": -5,
        "units": 7,
        "paid": True,
    },
]


def query(**fields: Any) -> Query:
    return Query.model_validate(fields)


def units(table: Table) -> list[Any]:
    return [row["units"] for row in table.rows]


class TestColumnsOf:
    def test_each_column_has_the_type_its_non_null_values_share(self) -> None:
        rows = [*SALES, {"mixed": 1}, {"mixed": "one"}, {"nothing": None}]
        assert columns_of(rows) == {
            "day": "date",
            "at": "date",
            "region": "text",
            "amount": "number",
            "units": "number",
            "paid": "bool",
            "mixed": "text",
            "nothing": "empty",
        }

    def test_rows_with_different_columns_of_the_same_count_are_all_read(self) -> None:
        rows = [{"a": 1, "b": "x"}, {"a": 2, "c": "2026-03-04"}]
        assert columns_of(rows) == {"a": "number", "b": "text", "c": "date"}
        assert run(rows, query(filter=[{"column": "c", "op": "not_null"}])).rows == [rows[1]]

    @pytest.mark.parametrize(
        ("values", "kind"),
        [
            ([1, 2.5, None], "number"),
            (["2026-03-04", "2026-03-04T10:00:00Z", "2026-03-04 10:00:00+02:00"], "date"),
            (["2026-03-04", "yesterday"], "text"),
            (["2026-02-30"], "text"),
            ([True, 1], "text"),
            ([None, None], "empty"),
        ],
    )
    def test_a_column_is_inferred_from_all_its_values(self, values: list[Any], kind: str) -> None:
        assert columns_of([{"c": value} for value in values]) == {"c": kind}


class TestFilters:
    @pytest.mark.parametrize(
        ("condition", "expected"),
        [
            ({"column": "region", "op": "eq", "value": "north"}, [1, 3]),
            ({"column": "region", "op": "ne", "value": "north"}, [2, 4, 5, 7]),  # nulls skipped
            ({"column": "amount", "op": "lt", "value": 20}, [1, 6, 7]),
            ({"column": "amount", "op": "le", "value": 20}, [1, 6, 7]),
            ({"column": "amount", "op": "gt", "value": 20}, [2, 4, 5]),
            ({"column": "amount", "op": "ge", "value": 30}, [4, 5]),
            ({"column": "region", "op": "in", "value": ["east", "south"]}, [2, 5, 7]),
            ({"column": "region", "op": "contains", "value": "NOR"}, [1, 3, 4]),
            ({"column": "amount", "op": "between", "value": [10, 30]}, [1, 2, 5]),
            ({"column": "amount", "op": "between", "value": "10..30"}, [1, 2, 5]),
            ({"column": "amount", "op": "is_null"}, [3]),
            ({"column": "amount", "op": "not_null"}, [1, 2, 4, 5, 6, 7]),
            ({"column": "paid", "op": "eq", "value": True}, [1, 3, 5, 7]),
            ({"column": "day", "op": "between", "value": "2026-03-04..2026-03-09"}, [2, 3, 4]),
            ({"column": "day", "op": "lt", "value": "2026-03-08"}, [1, 2]),
            ({"column": "day", "op": "eq", "value": "2026-04-01"}, [5]),
            # A datetime column filtered on days includes the whole last day.
            ({"column": "at", "op": "between", "value": "2026-03-02..2026-03-04"}, [1, 2]),
            ({"column": "at", "op": "le", "value": "2026-03-08"}, [1, 2, 3]),
        ],
    )
    def test_a_filter_keeps_the_rows_its_condition_holds_for(
        self, condition: dict[str, Any], expected: list[int]
    ) -> None:
        assert units(run(SALES, query(filter=[condition]))) == expected

    def test_in_mixes_whole_and_decimal_numbers(self) -> None:
        assert units(run(SALES, query(filter=[{"column": "units", "op": "in", "value": [2, 2.5, 3.0]}]))) == [
            2,
            3,
        ]

    def test_a_dashboard_condition_that_cannot_hold_in_the_column_matches_no_row(self) -> None:
        where = [Condition(column="units", op="contains", value="1")]
        assert run(SALES, None, where=where).rows == []

    def test_several_conditions_must_all_hold(self) -> None:
        table = run(
            SALES,
            query(
                filter=[
                    {"column": "region", "op": "eq", "value": "north"},
                    {"column": "amount", "op": "not_null"},
                ]
            ),
        )
        assert units(table) == [1]

    def test_the_dashboards_conditions_apply_before_the_querys_own(self) -> None:
        where = [Condition(column="day", op="between", value="2026-03-01..2026-03-31")]
        table = run(SALES, query(aggregate=[{"fn": "sum", "column": "units", "as": "units"}]), where=where)
        assert table.rows == [{"units": 10}]

    def test_a_dashboard_condition_on_a_column_the_source_lacks_is_ignored(self) -> None:
        where = [Condition(column="country", op="eq", value="fr")]
        assert len(run(SALES, None, where=where).rows) == len(SALES)

    def test_a_dashboard_value_from_a_url_is_read_as_the_columns_type(self) -> None:
        where = [Condition(column="units", op="eq", value="3")]
        assert units(run(SALES, None, where=where)) == [3]

    def test_a_dashboard_value_that_cannot_be_in_the_column_matches_no_row(self) -> None:
        where = [Condition(column="units", op="eq", value="three")]
        assert run(SALES, None, where=where).rows == []

    @pytest.mark.parametrize(
        "value",
        [10**400, -(10**400), float("inf"), float("nan"), [1, 10**400], [float("-inf"), 2]],
        ids=["a 400-digit integer", "below zero", "infinity", "NaN", "in a list", "-inf in a list"],
    )
    def test_a_condition_refuses_a_number_no_float_holds(self, value: Any) -> None:
        with pytest.raises(ValidationError) as raised:
            Condition(column="units", op="in" if isinstance(value, list) else "eq", value=value)
        (error,) = raised.value.errors()
        assert (error["loc"], error["type"]) == (("value",), "finite_number")

    @pytest.mark.parametrize("value", ["north\ud800", "\x00", "no\nrth", "\x85", "\u2028", ["a", "b\udfff"]])
    def test_a_condition_refuses_text_with_a_control_character_or_a_lone_surrogate(self, value: Any) -> None:
        with pytest.raises(ValidationError) as raised:
            Condition(column="region", op="in" if isinstance(value, list) else "eq", value=value)
        (error,) = raised.value.errors()
        assert (error["loc"], error["type"]) == (("value",), "control_character")

    def test_the_largest_numbers_a_float_holds_are_kept(self) -> None:
        assert Condition(column="units", op="lt", value=10**308).value == 10**308
        assert units(run(SALES, query(filter=[{"column": "units", "op": "lt", "value": 10**308}]))) == units(
            run(SALES, None)
        )

    @pytest.mark.parametrize("value", ["1e400", "-1e999", "nan"])
    def test_a_dashboard_value_too_large_for_a_float_matches_no_row(self, value: str) -> None:
        where = [Condition(column="units", op="eq", value=value)]
        assert run(SALES, None, where=where).rows == []

    def test_a_number_no_float_holds_that_slipped_past_the_model_is_refused_not_a_crash(self) -> None:
        # Made without validation, as a definition stored before the model refused it would be.
        huge = Condition.model_construct(column="units", op="eq", value=10**400)
        with pytest.raises(QueryError) as raised:
            run(SALES, Query.model_construct(filter=[huge], group_by=[], aggregate=[], compute=[], sort=[]))
        assert raised.value.field == "query.filter[0].value"
        assert run(SALES, None, where=[huge]).rows == []

    def test_without_a_query_the_rows_are_the_snapshots_own(self) -> None:
        table = run(SALES, None)
        assert table.rows == SALES
        assert table.columns == ["day", "at", "region", "amount", "units", "paid"]


class TestDaysInTheViewersTimezone:
    """SPEC §13: dates count in the client's timezone. A datetime with an offset is an instant: it
    falls on its day in the viewer's timezone. A date, or a datetime without an offset, is a day
    of the source's own and stays where it is."""

    ROWS: list[dict[str, Any]] = [
        {"at": "2026-03-31T23:30:00Z", "units": 1},  # 1 April 01:30 in Paris, 31 March 19:30 in New York
        {"at": "2026-04-01T10:00:00+02:00", "units": 2},  # 08:00 UTC: 1 April everywhere below
        {"at": "2026-04-30 22:30+0000", "units": 4},  # 1 May 00:30 in Paris
        {"at": "2026-04-30", "units": 8},  # a day: the same day in every timezone
        {"at": "2026-04-30T23:59", "units": 16},  # no offset: a local time already
    ]
    MONTHLY = query(
        group_by=[{"column": "at", "bucket": "month"}],
        aggregate=[{"fn": "sum", "column": "units", "as": "n"}],
    )

    @pytest.mark.parametrize(
        ("timezone", "months"),
        [
            (None, {"2026-03-01": 1, "2026-04-01": 30}),
            ("UTC", {"2026-03-01": 1, "2026-04-01": 30}),
            ("Europe/Paris", {"2026-04-01": 27, "2026-05-01": 4}),
            ("America/New_York", {"2026-03-01": 1, "2026-04-01": 30}),
            ("Pacific/Kiritimati", {"2026-04-01": 27, "2026-05-01": 4}),
            ("right/UTC", {"2026-03-01": 1, "2026-04-01": 30}),  # a name only Python's database has
        ],
    )
    def test_a_datetime_with_an_offset_is_bucketed_on_its_day_in_the_timezone(
        self, timezone: str | None, months: dict[str, int]
    ) -> None:
        table = run(self.ROWS, self.MONTHLY, timezone=timezone)
        assert {row["at"]: row["n"] for row in table.rows} == months

    @pytest.mark.parametrize(
        ("timezone", "expected"),
        [("UTC", [2, 4, 8, 16]), ("Europe/Paris", [1, 2, 8, 16]), ("America/New_York", [2, 4, 8, 16])],
    )
    def test_a_range_of_days_holds_the_instants_that_fall_on_them_in_the_timezone(
        self, timezone: str, expected: list[int]
    ) -> None:
        where = [Condition(column="at", op="between", value="2026-04-01..2026-04-30")]
        assert units(run(self.ROWS, None, where=where, timezone=timezone)) == expected
        assert (
            units(run(self.ROWS, query(sort=[{"column": "units"}]), where=where, timezone=timezone))
            == expected
        )

    @pytest.mark.parametrize(
        ("timezone", "literal", "expected"),
        [
            # 2026-04-30T22:00Z is 1 May 00:00 in Paris and 30 April 18:00 in New York.
            ("Europe/Paris", "2026-04-30T22:00:00Z", [4]),
            ("America/New_York", "2026-04-30T22:00:00Z", [4, 8, 16]),
            ("UTC", "2026-04-30T22:00:00Z", [4, 8, 16]),
            # 1 April 00:30 in Paris is 31 March 22:30 UTC.
            ("UTC", "2026-04-01T00:30:00+02:00", [1]),
            ("Europe/Paris", "2026-04-01T00:30:00+02:00", [1, 2]),
            # Without an offset a literal is a day of its own, in every timezone.
            ("Europe/Paris", "2026-04-30T23:00:00", [8, 16]),
        ],
    )
    def test_a_literal_with_an_offset_names_its_day_in_the_timezone(
        self, timezone: str, literal: str, expected: list[int]
    ) -> None:
        filtered = query(filter=[{"column": "at", "op": "eq", "value": literal}], sort=[{"column": "units"}])
        assert units(run(self.ROWS, filtered, timezone=timezone)) == expected
        where = [Condition(column="at", op="eq", value=literal)]
        assert units(run(self.ROWS, None, where=where, timezone=timezone)) == expected

    def test_the_forms_may_come_in_any_order(self) -> None:
        # The engine reads the usual forms at once, taking its form from the first value: here a
        # plain day, then four other forms, and a time of 25:00, which is only its day.
        rows = [*reversed(self.ROWS), {"at": "2026-04-30T25:00Z", "units": 32}]
        table = run(rows, self.MONTHLY, timezone="Europe/Paris")
        assert {row["at"]: row["n"] for row in table.rows} == {"2026-04-01": 59, "2026-05-01": 4}

    def test_answers_are_cached_apart_for_each_timezone(self) -> None:
        cache = QueryCache(8)
        paris = cache.run(lambda: self.ROWS, "v1", self.MONTHLY, timezone="Europe/Paris")
        utc = cache.run(lambda: self.ROWS, "v1", self.MONTHLY, timezone="UTC")
        assert [row["at"] for row in paris.rows] == ["2026-04-01", "2026-05-01"]
        assert [row["at"] for row in utc.rows] == ["2026-03-01", "2026-04-01"]
        assert cache.run(lambda: self.ROWS, "v1", self.MONTHLY, timezone="Europe/Paris") is paris

    def test_an_answer_keeps_the_text_the_source_sent(self) -> None:
        table = run(self.ROWS, query(sort=[{"column": "units"}], limit=1), timezone="Europe/Paris")
        assert table.rows == [{"at": "2026-03-31T23:30:00Z", "units": 1}]


class TestAggregates:
    @pytest.mark.parametrize(
        ("fn", "column", "value"),
        [
            ("sum", "amount", 100.5),
            ("avg", "amount", 100.5 / 6),  # the null is skipped, not counted as zero
            ("median", "amount", 15.25),
            ("min", "amount", -5),
            ("max", "amount", 40),
            ("count", None, 7),
            ("count", "amount", 6),
            ("count", "region", 6),
            ("count_distinct", "region", 4),  # north, North, south, east; null is no value
            ("min", "day", "2026-03-02"),
            ("max", "at", "2027-01-01T00:00:00Z"),
        ],
    )
    def test_an_aggregate_over_all_rows(self, fn: str, column: str | None, value: Any) -> None:
        table = run(SALES, query(aggregate=[{"fn": fn, "column": column, "as": "v"}]))
        assert table.columns == ["v"]
        assert table.rows == [{"v": pytest.approx(value) if isinstance(value, float) else value}]

    def test_averages_of_no_values_are_null_and_counts_zero(self) -> None:
        table = run(
            SALES,
            query(
                filter=[{"column": "amount", "op": "is_null"}],
                aggregate=[
                    {"fn": "avg", "column": "amount", "as": "avg"},
                    {"fn": "median", "column": "amount", "as": "median"},
                    {"fn": "count", "column": "amount", "as": "count"},
                    {"fn": "count", "as": "rows"},
                ],
            ),
        )
        assert table.rows == [{"avg": None, "median": None, "count": 0, "rows": 1}]

    def test_groups_come_out_in_the_order_of_their_keys(self) -> None:
        table = run(
            SALES, query(group_by=["region"], aggregate=[{"fn": "sum", "column": "units", "as": "units"}])
        )
        assert table.columns == ["region", "units"]
        assert table.rows == [
            {"region": "North", "units": 4},
            {"region": "east", "units": 5},
            {"region": "north", "units": 4},
            {"region": "south", "units": 9},
            {"region": None, "units": 6},
        ]

    def test_group_by_alone_gives_the_distinct_values(self) -> None:
        table = run(SALES, query(group_by=["paid"]))
        assert table.rows == [{"paid": False}, {"paid": True}, {"paid": None}]

    @pytest.mark.parametrize(
        ("bucket", "expected"),
        [
            (
                "day",
                [
                    ("2026-03-02", 1),
                    ("2026-03-04", 2),
                    ("2026-03-08", 3),
                    ("2026-03-09", 4),
                    ("2026-04-01", 5),
                    ("2026-07-15", 6),
                    ("2027-01-01", 7),
                ],
            ),
            # Weeks start on Monday: 2026-03-02 is one, 2026-03-08 a Sunday of the same week.
            (
                "week",
                [
                    ("2026-03-02", 1 + 2 + 3),
                    ("2026-03-09", 4),
                    ("2026-03-30", 5),
                    ("2026-07-13", 6),
                    ("2026-12-28", 7),
                ],
            ),
            ("month", [("2026-03-01", 10), ("2026-04-01", 5), ("2026-07-01", 6), ("2027-01-01", 7)]),
            ("quarter", [("2026-01-01", 10), ("2026-04-01", 5), ("2026-07-01", 6), ("2027-01-01", 7)]),
            ("year", [("2026-01-01", 21), ("2027-01-01", 7)]),
        ],
    )
    def test_a_bucket_groups_dates_by_its_first_day(
        self, bucket: str, expected: list[tuple[str, int]]
    ) -> None:
        for column in ("day", "at"):
            table = run(
                SALES,
                query(
                    group_by=[{"column": column, "bucket": bucket}],
                    aggregate=[{"fn": "sum", "column": "units", "as": "units"}],
                ),
            )
            assert [(row[column], row["units"]) for row in table.rows] == expected


class TestComputeSortLimit:
    def test_compute_runs_on_rows_before_grouping(self) -> None:
        table = run(
            SALES,
            query(
                compute=[
                    {"as": "price", "expr": "coalesce(amount, 0) / units"},
                    {"as": "double", "expr": "round(price * 2, 1)"},
                ],
                group_by=["paid"],
                aggregate=[{"fn": "max", "column": "double", "as": "top"}],
            ),
        )
        assert table.rows == [
            {"paid": False, "top": 20.5},
            {"paid": True, "top": 20.0},
            {"paid": None, "top": 20.0},
        ]

    def test_a_computed_column_divided_by_zero_is_null(self) -> None:
        table = run(SALES, query(compute=[{"as": "r", "expr": "units / (units - 1)"}], limit=2))
        assert [row["r"] for row in table.rows] == [None, 2.0]

    def test_abs_and_round_in_compute(self) -> None:
        table = run(SALES, query(compute=[{"as": "r", "expr": "round(abs(amount) / 3, 2)"}], limit=2))
        assert [row["r"] for row in table.rows] == [3.33, 6.83]
        assert table.columns[-1] == "r"

    def test_sort_puts_nulls_last_and_limit_keeps_the_first(self) -> None:
        ascending = run(SALES, query(sort=[{"column": "amount"}]))
        assert units(ascending) == [7, 6, 1, 2, 5, 4, 3]
        descending = run(SALES, query(sort=[{"column": "amount", "desc": True}], limit=3))
        assert units(descending) == [4, 5, 2]

    def test_ungrouped_answers_are_the_snapshots_rows_with_the_computed_columns(self) -> None:
        table = run(
            SALES, query(compute=[{"as": "twice", "expr": "units * 2"}], sort=[{"column": "amount"}], limit=2)
        )
        assert table.rows == [{**SALES[6], "twice": 14}, {**SALES[5], "twice": 12}]
        assert table.columns == [*SALES[0], "twice"]
        assert "twice" not in SALES[6]  # the snapshot itself is left as it is

    def test_sort_by_several_columns(self) -> None:
        table = run(SALES, query(sort=[{"column": "paid"}, {"column": "units", "desc": True}]))
        assert units(table) == [6, 2, 7, 5, 3, 1, 4]

    def test_groups_sorted_by_an_aggregate_and_limited(self) -> None:
        table = run(
            SALES,
            query(
                group_by=["region"],
                aggregate=[{"fn": "sum", "column": "units", "as": "units"}],
                sort=[{"column": "units", "desc": True}],
                limit=2,
            ),
        )
        assert table.rows == [{"region": "south", "units": 9}, {"region": None, "units": 6}]

    def test_answers_are_json(self) -> None:
        rows = [{"x": float("nan"), "y": 1}, {"x": 2.0, "y": 2}]
        table = run(
            rows,
            query(
                compute=[{"as": "z", "expr": "x * 1"}],
                group_by=["y"],
                aggregate=[{"fn": "avg", "column": "z", "as": "z"}],
            ),
        )
        assert json.loads(json.dumps(table.rows, allow_nan=False)) == [
            {"y": 1, "z": None},
            {"y": 2, "z": 2.0},
        ]


@pytest.mark.parametrize("q", [None, query(sort=[{"column": "x"}])])
def test_nan_and_infinity_in_a_snapshot_are_answered_as_nulls(q: Query | None) -> None:
    rows: list[dict[str, Any]] = [{"x": float("nan")}, {"x": float("inf")}, {"x": 1}, {"x": 2**70}]
    table = run(rows, q)
    assert json.loads(json.dumps(table.rows, allow_nan=False)) == table.rows
    assert sorted(row["x"] is None for row in table.rows) == [False, False, True, True]
    assert rows[0]["x"] != rows[0]["x"]  # the snapshot itself is left as it is


def body(**fields: Any) -> KlipBody:
    return KlipBody.model_validate({"kind": "table", "datasource_id": 1, **fields})


TYPES = columns_of(SALES)


class TestCheck:
    @pytest.mark.parametrize(
        ("fields", "field", "words"),
        [
            (
                {"query": {"filter": [{"column": "nope", "op": "is_null"}]}},
                "query.filter[0].column",
                "'nope'",
            ),
            (
                {"query": {"filter": [{"column": "amount", "op": "gt", "value": "x"}]}},
                "query.filter[0].value",
                "'amount'",
            ),
            (
                {"query": {"filter": [{"column": "region", "op": "lt", "value": 3}]}},
                "query.filter[0].value",
                "'region'",
            ),
            (
                {"query": {"filter": [{"column": "amount", "op": "contains", "value": "1"}]}},
                "query.filter[0].op",
                "text",
            ),
            (
                {"query": {"filter": [{"column": "day", "op": "between", "value": [1, 2]}]}},
                "query.filter[0].value",
                "date",
            ),
            (
                {"query": {"filter": [{"column": "paid", "op": "lt", "value": True}]}},
                "query.filter[0].op",
                "'paid'",
            ),
            (
                {"query": {"compute": [{"as": "x", "expr": "amount +"}]}},
                "query.compute[0].expr",
                "position 8",
            ),
            (
                {"query": {"compute": [{"as": "x", "expr": "1"}, {"as": "y", "expr": "x * nope"}]}},
                "query.compute[1].expr",
                "'nope'",
            ),
            (
                {"query": {"compute": [{"as": "x", "expr": "region * 2"}]}},
                "query.compute[0].expr",
                "'region'",
            ),
            ({"query": {"group_by": ["nope"]}}, "query.group_by[0]", "'nope'"),
            (
                {"query": {"group_by": [{"column": "region", "bucket": "month"}]}},
                "query.group_by[0].bucket",
                "'region'",
            ),
            ({"query": {"group_by": ["region", "region"]}}, "query.group_by[1]", "twice"),
            (
                {"query": {"aggregate": [{"fn": "sum", "column": "region", "as": "s"}]}},
                "query.aggregate[0].column",
                "'region'",
            ),
            (
                {"query": {"aggregate": [{"fn": "avg", "column": "day", "as": "s"}]}},
                "query.aggregate[0].column",
                "'day'",
            ),
            (
                {"query": {"aggregate": [{"fn": "median", "column": "paid", "as": "s"}]}},
                "query.aggregate[0].column",
                "'paid'",
            ),
            (
                {"query": {"aggregate": [{"fn": "max", "column": "region", "as": "s"}]}},
                "query.aggregate[0].column",
                "'region'",
            ),
            (
                {"query": {"aggregate": [{"fn": "count", "column": "nope", "as": "s"}]}},
                "query.aggregate[0].column",
                "'nope'",
            ),
            (
                {"query": {"group_by": ["region"], "aggregate": [{"fn": "count", "as": "region"}]}},
                "query.aggregate[0].as",
                "'region'",
            ),
            (
                {"query": {"group_by": ["region"], "sort": [{"column": "units"}]}},
                "query.sort[0].column",
                "'units'",
            ),
            ({"columns": {"fields": ["day", "nope"]}}, "columns.fields[1]", "'nope'"),
            ({"columns": {"formats": {"nope": {"style": "percent"}}}}, "columns.formats.nope", "'nope'"),
            (
                {
                    "query": {"group_by": ["region"], "aggregate": [{"fn": "count", "as": "n"}]},
                    "columns": {"fields": ["units"]},
                },
                "columns.fields[0]",
                "output",
            ),
        ],
    )
    def test_a_query_or_mapping_that_does_not_fit_is_refused_naming_the_field(
        self, fields: dict[str, Any], field: str, words: str
    ) -> None:
        with pytest.raises(QueryError) as raised:
            check(body(**fields), TYPES)
        assert raised.value.field == field
        assert words in raised.value.message

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"kind": "bar", "columns": {"x": "day", "y": "nope"}}, "columns.y"),
            ({"kind": "bar", "columns": {"x": "nope"}, "series": [{"column": "total"}]}, "columns.x"),
            (
                {
                    "kind": "line",
                    "columns": {"x": "day"},
                    "series": [{"column": "total"}, {"column": "units"}],
                },
                "series[1].column",
            ),
            ({"kind": "pie", "columns": {"label": "day", "value": "units"}}, "columns.value"),
            ({"kind": "value", "columns": {"value": "amount"}}, "columns.value"),
        ],
    )
    def test_a_charts_columns_are_checked_against_the_querys_output(
        self, fields: dict[str, Any], field: str
    ) -> None:
        grouped = {
            "group_by": [{"column": "day", "bucket": "month"}],
            "aggregate": [{"fn": "sum", "column": "amount", "as": "total"}],
        }
        with pytest.raises(QueryError) as raised:
            check(body(query=grouped, **fields), TYPES)
        assert raised.value.field == field

    def test_a_fitting_query_answers_its_output_columns_and_types(self) -> None:
        output = check(
            body(
                kind="bar",
                columns={"x": "day"},
                series=[{"column": "total"}, {"column": "people"}],
                query={
                    "filter": [{"column": "day", "op": "between", "value": "2026-01-01..2026-12-31"}],
                    "compute": [{"as": "net", "expr": "amount * 0.8"}],
                    "group_by": [{"column": "day", "bucket": "week"}],
                    "aggregate": [
                        {"fn": "sum", "column": "net", "as": "total"},
                        {"fn": "count_distinct", "column": "region", "as": "people"},
                        {"fn": "max", "column": "at", "as": "last"},
                    ],
                    "sort": [{"column": "total", "desc": True}],
                },
            ),
            TYPES,
        )
        assert output == {"day": "date", "total": "number", "people": "number", "last": "date"}

    def test_without_grouping_the_mapping_may_name_source_and_computed_columns(self) -> None:
        output = check(
            body(columns={"fields": ["region", "net"]}, query={"compute": [{"as": "net", "expr": "amount"}]}),
            TYPES,
        )
        assert output == {**TYPES, "net": "number"}

    def test_a_source_without_rows_yet_refuses_only_what_is_wrong_whatever_the_rows(self) -> None:
        fields = {
            "kind": "bar",
            "columns": {"x": "day", "y": "total"},
            "query": {
                "group_by": [{"column": "day", "bucket": "month"}],
                "aggregate": [{"fn": "sum", "column": "amount", "as": "total"}],
            },
        }
        assert check(body(**fields), {}) == {"day": "date", "total": "number"}
        with pytest.raises(QueryError) as raised:
            check(body(**{**fields, "columns": {"x": "day", "y": "amount"}}), {})
        assert raised.value.field == "columns.y"
        with pytest.raises(QueryError) as raised:
            check(body(query={"compute": [{"as": "x", "expr": "a +"}]}), {})
        assert raised.value.field == "query.compute[0].expr"

    def test_run_refuses_what_check_refuses(self) -> None:
        with pytest.raises(QueryError):
            run(SALES, query(aggregate=[{"fn": "sum", "column": "region", "as": "s"}]))


class TestCache:
    Q = Query.model_validate({"group_by": ["region"], "aggregate": [{"fn": "count", "as": "n"}]})
    Q_SORTED = Query.model_validate(
        {"group_by": ["region"], "aggregate": [{"fn": "count", "as": "n"}], "sort": [{"column": "n"}]}
    )

    def test_a_second_ask_is_answered_from_the_cache_without_loading(self) -> None:
        cache = QueryCache(8)
        loads = []

        def loader() -> list[dict[str, Any]]:
            loads.append(1)
            return SALES

        first = cache.run(loader, "v1", self.Q)
        second = cache.run(loader, "v1", self.Q)
        assert second is first
        assert (cache.hits, cache.misses, len(loads)) == (1, 1, 1)

    def test_two_queries_over_one_version_load_the_rows_once(self) -> None:
        cache = QueryCache(8)
        loads = []

        def loader() -> list[dict[str, Any]]:
            loads.append(1)
            return SALES

        cache.run(loader, "v1", self.Q)
        cache.run(loader, "v1", None)
        cache.run(loader, "v1", self.Q, [Condition(column="paid", op="eq", value=True)])
        assert len(loads) == 1
        assert cache.misses == 3

    def test_a_new_version_is_asked_again(self) -> None:
        cache = QueryCache(8)
        cache.run(lambda: SALES, "v1", self.Q)
        changed = cache.run(lambda: SALES[:1], "v2", self.Q)
        assert changed.rows == [{"region": "north", "n": 1}]

    def test_the_least_recently_used_answer_is_dropped_beyond_capacity(self) -> None:
        cache = QueryCache(2)
        for version in ("a", "b", "a", "c", "a"):
            cache.run(lambda: SALES, version, self.Q)
        assert (cache.hits, cache.misses) == (2, 3)
        cache.run(lambda: SALES, "b", self.Q)
        assert cache.misses == 4

    def test_threads_asking_together_compute_once(self) -> None:
        cache = QueryCache(8)
        loads = []
        gate = threading.Event()

        def loader() -> list[dict[str, Any]]:
            gate.wait(1)
            loads.append(1)
            return SALES

        answers: list[Table] = []
        threads = [
            threading.Thread(target=lambda: answers.append(cache.run(loader, "v", self.Q))) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        gate.set()
        for thread in threads:
            thread.join()
        assert len(loads) == 1
        assert all(answer is answers[0] for answer in answers)

    def test_answers_beyond_the_row_budget_are_dropped_oldest_first(self) -> None:
        cache = QueryCache(100, max_rows=10)
        cache.run(lambda: SALES, "a", None)  # 7 rows
        cache.run(lambda: SALES, "b", None)  # 7 more: "a" goes
        cache.run(lambda: SALES, "b", None)
        cache.run(lambda: SALES, "a", None)
        assert (cache.hits, cache.misses) == (1, 3)

    def test_loaded_sources_beyond_the_row_budget_are_loaded_again(self) -> None:
        cache = QueryCache(100, max_source_rows=10)
        loads = []

        def loader() -> list[dict[str, Any]]:
            loads.append(1)
            return SALES

        for version in ("a", "b"):
            cache.run(loader, version, self.Q)
        cache.run(loader, "a", None)  # a new answer over a source dropped for "b"
        assert len(loads) == 3

    def test_the_cache_tells_a_sources_column_types_from_its_loaded_table(self) -> None:
        cache = QueryCache(8)
        loads = []

        def loader() -> list[dict[str, Any]]:
            loads.append(1)
            return SALES

        assert cache.columns(loader, "v1") == columns_of(SALES)
        cache.run(loader, "v1", self.Q)
        assert cache.columns(loader, "v1") == columns_of(SALES)
        assert len(loads) == 1

    def test_rows_without_a_version_are_never_kept(self) -> None:
        cache = QueryCache(8)
        assert cache.run(lambda: SALES, "", self.Q).rows != cache.run(lambda: SALES[:1], "", self.Q).rows
        assert cache.columns(lambda: [], "") == {}

    def test_the_cache_keeps_the_loaded_table_per_version(self) -> None:
        cache = QueryCache(8)
        first = cache.run(lambda: SALES, "test-version-1", self.Q)
        # The same version means the same rows: the table loaded for it answers another query.
        again = cache.run(lambda: SALES[:1], "test-version-1", self.Q_SORTED)
        assert sorted(map(str, again.rows)) == sorted(map(str, first.rows))
        assert run(SALES[:1], self.Q).rows == [{"region": "north", "n": 1}]

    def test_a_refused_query_is_not_cached_and_raises_again(self) -> None:
        cache = QueryCache(8)
        bad = Query.model_validate({"aggregate": [{"fn": "sum", "column": "region", "as": "s"}]})
        for _ in range(2):
            with pytest.raises(QueryError):
                cache.run(lambda: SALES, "v", bad)


def test_an_empty_snapshot_answers_no_groups_and_a_count_of_zero() -> None:
    assert run([], query(group_by=["region"], aggregate=[{"fn": "count", "as": "n"}])).rows == []
    assert run([], query(aggregate=[{"fn": "count", "as": "n"}])).rows == [{"n": 0}]
    assert run([], None).rows == []


DAILY = query(group_by=[{"column": "at", "bucket": "day"}], aggregate=[{"fn": "count", "as": "n"}])


def days(table: Table) -> dict[str, int]:
    return {row["at"]: row["n"] for row in table.rows}


class TestInstantsBeyondTheCalendar:
    """Python's datetime holds years 1 to 9999; a datetime with an offset near either end may be
    an instant (or a local day) outside them. The engine (polars) reads such column values and
    puts them on a day; past Python's calendar, a value and a literal naming it keep the day of
    their text, so they still meet."""

    @pytest.mark.parametrize(
        ("literal", "timezone"),
        [
            ("9999-12-31T23:00-05:00", "Pacific/Kiritimati"),  # 10000-01-01T04:00Z
            ("9999-12-31T23:00-05:00", "UTC"),
            ("0001-01-01T00:30+01:00", "UTC"),  # 0000-12-31T23:30Z
            ("9999-12-31T20:00Z", "Pacific/Kiritimati"),  # in range in UTC, 10000-01-01 10:00 there
        ],
    )
    def test_a_dashboard_filter_literal_past_the_calendar_finds_its_own_row(
        self, literal: str, timezone: str
    ) -> None:
        rows = [{"at": literal, "n": 1}, {"at": "2026-04-30T10:00:00Z", "n": 2}]
        where = [Condition(column="at", op="eq", value=literal)]
        # Past the calendar, value and literal alike keep the day of their text: they match.
        table = run(rows, None, where=where, timezone=timezone)
        assert [row["n"] for row in table.rows] == [1]

    @pytest.mark.parametrize("literal", ["9999-12-31T23:00-05:00", "0001-01-01T00:30+01:00"])
    def test_a_klips_own_filter_literal_past_the_calendar_finds_its_own_row(self, literal: str) -> None:
        rows = [{"at": literal, "n": 1}, {"at": "2026-04-30T10:00:00Z", "n": 2}]
        filtered = query(filter=[{"column": "at", "op": "eq", "value": literal}])
        for timezone in ("UTC", "Europe/Paris", "Pacific/Kiritimati", "Pacific/Pago_Pago"):
            assert [row["n"] for row in run(rows, filtered, timezone=timezone).rows] == [1]

    @pytest.mark.parametrize("value", ["0001-01-01T00:30+0099", "9999-12-31T23:00-0099"])
    def test_a_column_value_whose_instant_leaves_the_calendar_does_not_break_the_source(
        self, value: str
    ) -> None:
        # Python reads an offset of 99 minutes (polars does not): the instant is then outside
        # years 1-9999, and the value keeps the day of its text.
        rows = [{"at": "2026-04-30T10:00:00Z", "n": 1}, {"at": value, "n": 2}]
        table = run(rows, DAILY, timezone="UTC")
        assert days(table) == {"2026-04-30": 1, value[:10]: 1}


class TestLeapSecondsAndTheEndOfTheDay:
    """RFC 3339 allows a leap second (`23:59:60`): it is read as the second before it, as a value
    and as a literal, so it stays on its own day (the engine alone would read it as the next
    day's 00:00:00, and Python not at all)."""

    LEAP = "2026-04-30T23:59:60Z"

    @pytest.mark.parametrize("timezone", ["UTC", "Europe/Paris", "Pacific/Kiritimati"])
    def test_a_filter_on_a_leap_second_value_finds_its_own_row(self, timezone: str) -> None:
        rows = [{"at": self.LEAP, "n": 1}]
        where = [Condition(column="at", op="eq", value=self.LEAP)]
        assert run(rows, None, where=where, timezone=timezone).rows == rows
        own = query(filter=[{"column": "at", "op": "eq", "value": self.LEAP}])
        assert run(rows, own, timezone=timezone).rows == rows

    @pytest.mark.parametrize(
        ("timezone", "day"),
        [
            ("UTC", "2026-04-30"),  # the leap second is the last second of 30 April (UTC)
            ("Europe/Paris", "2026-05-01"),  # 01:59:60 on 1 May
            ("Pacific/Kiritimati", "2026-05-01"),  # 13:59:60 on 1 May
        ],
    )
    def test_a_leap_second_falls_on_its_day_in_the_timezone_as_a_value_and_as_a_literal(
        self, timezone: str, day: str
    ) -> None:
        rows = [{"at": self.LEAP, "n": 1}, {"at": day, "n": 2}]
        assert days(run(rows, DAILY, timezone=timezone)) == {day: 2}
        where = [Condition(column="at", op="eq", value=self.LEAP)]
        assert [row["n"] for row in run(rows, None, where=where, timezone=timezone).rows] == [1, 2]


# The earliest and the latest value of `at`.
SPANS = query(
    aggregate=[
        {"fn": "min", "column": "at", "as": "first"},
        {"fn": "max", "column": "at", "as": "last"},
    ]
)


class TestInstantsInOrder:
    """`min`, `max` and `sort` order datetimes with an offset by their instants, not their text. A
    source in Paris sends +02:00 in summer and +01:00 in winter: on the night clocks go back,
    02:10+01:00 (01:10Z) comes after 02:30+02:00 (00:30Z), though its text sorts before it."""

    ROWS: list[dict[str, Any]] = [
        {"at": "2026-10-25T02:30:00+02:00", "n": 1},  # 00:30Z
        {"at": "2026-10-25T02:10:00+01:00", "n": 2},  # 01:10Z, forty minutes later
    ]

    def test_max_and_min_of_offset_datetimes_are_the_latest_and_earliest_instants(self) -> None:
        assert run(self.ROWS, SPANS, timezone="Europe/Paris").rows == [
            {"first": "2026-10-25T02:30:00+02:00", "last": "2026-10-25T02:10:00+01:00"}
        ]

    def test_sorting_by_an_offset_datetime_orders_the_instants(self) -> None:
        latest = query(sort=[{"column": "at", "desc": True}], limit=1)
        assert [row["n"] for row in run(self.ROWS, latest, timezone="Europe/Paris").rows] == [2]
        both = query(sort=[{"column": "at"}])
        assert [row["n"] for row in run(self.ROWS, both).rows] == [1, 2]

    def test_grouped_minimums_are_the_earliest_instant_of_each_group(self) -> None:
        rows = [{**row, "site": "north"} for row in self.ROWS] + [
            {"at": "2026-10-25T01:00:00Z", "n": 3, "site": "south"},
            {"at": "2026-10-24", "n": 4, "site": "south"},  # a plain day sorts by its text
        ]
        spans = query(group_by=["site"], aggregate=[{"fn": "min", "column": "at", "as": "first"}])
        assert run(rows, spans).rows == [
            {"site": "north", "first": "2026-10-25T02:30:00+02:00"},
            {"site": "south", "first": "2026-10-24"},
        ]

    def test_a_computed_column_of_the_same_name_is_sorted_as_itself(self) -> None:
        rows = [{**row, "x": 10 - row["n"]} for row in self.ROWS]
        sorted_ = query(compute=[{"expr": "x", "as": "at"}], sort=[{"column": "at"}])
        assert [row["n"] for row in run(rows, sorted_).rows] == [2, 1]


# A source in Paris on the night clocks go back: 02:10+01:00 (01:10Z) is forty minutes after
# 02:30+02:00 (00:30Z), though its text sorts first.
NIGHT: list[dict[str, Any]] = [
    {"at": "2026-10-25T02:30:00+02:00", "site": "north"},  # 00:30Z
    {"at": "2026-10-25T02:10:00+01:00", "site": "south"},  # 01:10Z
]


class TestGroupedAnswersSortedByInstants:
    def test_groups_sorted_by_their_latest_offset_datetime_come_in_the_order_of_the_instants(self) -> None:
        latest = query(
            group_by=["site"],
            aggregate=[{"fn": "max", "column": "at", "as": "last"}],
            sort=[{"column": "last", "desc": True}],
            limit=1,
        )
        # south's latest (01:10Z) is after north's (00:30Z): it is the most recent site.
        assert run(NIGHT, latest, timezone="Europe/Paris").rows == [
            {"site": "south", "last": "2026-10-25T02:10:00+01:00"}
        ]

    def test_groups_sorted_by_their_earliest_offset_datetime_come_in_the_order_of_the_instants(self) -> None:
        first = query(
            group_by=["site"],
            aggregate=[{"fn": "min", "column": "at", "as": "first"}],
            sort=[{"column": "first"}],
        )
        assert [row["site"] for row in run(NIGHT, first).rows] == ["north", "south"]

    def test_grouping_by_an_offset_datetime_and_sorting_by_it_orders_the_instants(self) -> None:
        by_time = query(group_by=["at"], aggregate=[{"fn": "count", "as": "n"}], sort=[{"column": "at"}])
        # The ungrouped sort orders these rows by instant (README: sort orders datetimes with an
        # offset by their instants); grouped by the same column, the same sort must too.
        assert [row["at"] for row in run(NIGHT, query(sort=[{"column": "at"}])).rows] == [
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:10:00+01:00",
        ]
        assert [row["at"] for row in run(NIGHT, by_time).rows] == [
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:10:00+01:00",
        ]


class TestMixedColumnsInOrder:
    def test_a_plain_datetime_written_with_a_space_falls_between_the_instants_as_its_text_says(self) -> None:
        # A plain datetime falls among the instants (in UTC) as its text says, written with a
        # space or a T: 05:00 comes after 00:30Z.
        rows = [{"at": "2026-03-29 05:00", "n": 1}, {"at": "2026-03-29T00:30:00Z", "n": 2}]
        assert run(rows, SPANS).rows == [{"first": "2026-03-29T00:30:00Z", "last": "2026-03-29 05:00"}]
        assert [row["n"] for row in run(rows, query(sort=[{"column": "at"}])).rows] == [2, 1]

    def test_an_instant_past_year_9999_is_the_latest_not_the_earliest(self) -> None:
        # 9999-12-31T23:00-05:00 is 10000-01-01T04:00Z, past Python's calendar: it is ordered by
        # its text, as its day is.
        rows = [{"at": "9999-12-31T23:00-05:00", "n": 1}, {"at": "2026-01-01T00:00:00Z", "n": 2}]
        assert run(rows, SPANS).rows == [{"first": "2026-01-01T00:00:00Z", "last": "9999-12-31T23:00-05:00"}]


class TestSums:
    def test_whole_numbers_add_up_past_64_bits(self) -> None:
        # Ten of the largest 18-digit number pass what 64 bits hold (9.2e18): no wrapping round.
        rows = [{"v": 999999999999999999, "g": "a"}] * 10
        total = query(aggregate=[{"fn": "sum", "column": "v", "as": "total"}])
        assert run(rows, total).rows == [{"total": 9_999_999_999_999_999_990}]
        grouped = query(group_by=["g"], aggregate=[{"fn": "sum", "column": "v", "as": "total"}])
        assert run(rows, grouped).rows == [{"g": "a", "total": 9_999_999_999_999_999_990}]


class TestWholeNumbersInCompute:
    # Whole numbers are computed exactly; a result past what 64 bits hold is a gap (null), as a
    # division by zero is, never a number wrapped round to the other sign.
    @pytest.mark.parametrize(
        ("expr", "expected"),
        [
            ("v * 4", None),  # 2**62 * 4 wrapped to 0
            ("v + v", None),  # wrapped to -2**63
            ("v * 2 - 1", None),  # the product is already out of range
            ("v - 1 + v", 2**63 - 1),  # the largest 64-bit number: kept
            ("-(v * -2)", None),  # -(-2**63) wrapped to itself
            ("abs(v * -2)", None),
            ("v * -2", -(2**63)),  # the smallest 64-bit number: kept
            ("coalesce(v * 4, 7)", 7),
            ("v * 4.5", 4.5 * 2**62),  # with a fraction: a float, which does not wrap
            ("v / 2", float(2**61)),
        ],
    )
    def test_a_whole_result_past_64_bits_is_null_not_wrapped(self, expr: str, expected: Any) -> None:
        rows = [{"v": 2**62}]
        answer = run(rows, query(compute=[{"as": "x", "expr": expr}])).rows
        assert answer[0]["x"] == expected

    def test_an_overflowing_row_is_a_gap_and_the_others_keep_their_values(self) -> None:
        rows = [{"v": 3, "g": "a"}, {"v": 2**62, "g": "a"}, {"v": -5, "g": "b"}]
        doubled = query(compute=[{"as": "x", "expr": "v * 4"}])
        assert [row["x"] for row in run(rows, doubled).rows] == [12, None, -20]
        summed = query(
            compute=[{"as": "x", "expr": "v * 4"}],
            group_by=["g"],
            aggregate=[{"fn": "sum", "column": "x", "as": "total"}],
            sort=[{"column": "g"}],
        )
        assert run(rows, summed).rows == [{"g": "a", "total": 12}, {"g": "b", "total": -20}]

    def test_a_computed_column_built_on_another_stays_exact(self) -> None:
        rows = [{"v": 999_999_999_999_999_999}]
        chained = query(compute=[{"as": "x", "expr": "v - 1"}, {"as": "y", "expr": "x * 9"}])
        assert run(rows, chained).rows[0]["y"] == 8_999_999_999_999_999_982
        overflowing = query(compute=[{"as": "x", "expr": "v * 10"}, {"as": "y", "expr": "x + 1"}])
        assert run(rows, overflowing).rows[0]["y"] is None


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00"])
@pytest.mark.parametrize("timezone", ["localtime", "right/Europe/Paris"])
def test_an_instant_past_the_calendar_keeps_its_day_in_a_timezone_only_python_knows(
    value: str, timezone: str
) -> None:
    # Instants in years 0 and 10000 keep their text's day, also where the engine does not know the
    # viewer's timezone and Python converts each instant (a name a partner kept from before the
    # names were narrowed, or a zone newer than the engine's database).
    rows = [{"at": value, "n": 1}, {"at": "2026-04-30T10:00:00Z", "n": 2}]
    daily = query(group_by=[{"column": "at", "bucket": "day"}], aggregate=[{"fn": "count", "as": "n"}])
    answer = {row["at"]: row["n"] for row in run(rows, daily, timezone=timezone).rows}
    assert answer[value[:10]] == 1


class TestGroupsTiedBySort:
    # Five regions with two orders each: sorted by their count, every group ties.
    REGIONS = [{"region": r, "amount": 1} for r in ["north", "south", "east", "west", "centre"] * 2]
    BY_COUNT: ClassVar[dict[str, Any]] = {
        "group_by": ["region"],
        "aggregate": [{"fn": "count", "as": "orders"}],
        "sort": [{"column": "orders", "desc": True}],
    }

    def test_tied_groups_come_in_the_order_of_their_keys_and_a_limit_keeps_the_first_of_them(self) -> None:
        whole = [row["region"] for row in run(self.REGIONS, query(**self.BY_COUNT)).rows]
        assert whole == ["centre", "east", "north", "south", "west"]
        for limit in (1, 2, 3, 4):
            limited = run(self.REGIONS, query(**self.BY_COUNT, limit=limit)).rows
            assert [row["region"] for row in limited] == whole[:limit]


class TestDatetimesWrittenWithASpace:
    # ISO 8601 datetimes may separate day and time with a space or a T: both are ordered by time.
    STAMPS = [
        {"at": "2026-03-02 10:00", "n": 1},
        {"at": "2026-03-02T09:00", "n": 2},
        {"at": "2026-03-01T23:00", "n": 3},
    ]

    def test_min_and_max_are_the_earliest_and_the_latest(self) -> None:
        spans = query(
            aggregate=[
                {"fn": "max", "column": "at", "as": "last"},
                {"fn": "min", "column": "at", "as": "first"},
            ]
        )
        assert run(self.STAMPS, spans).rows == [{"last": "2026-03-02 10:00", "first": "2026-03-01T23:00"}]

    def test_sorting_orders_them_by_time(self) -> None:
        assert [row["n"] for row in run(self.STAMPS, query(sort=[{"column": "at"}])).rows] == [3, 2, 1]
        latest_first = query(sort=[{"column": "at", "desc": True}], limit=1)
        assert [row["n"] for row in run(self.STAMPS, latest_first).rows] == [1]

    def test_a_groups_latest_is_its_latest_time(self) -> None:
        rows = [{**row, "g": "all"} for row in self.STAMPS]
        latest = query(group_by=["g"], aggregate=[{"fn": "max", "column": "at", "as": "last"}])
        assert run(rows, latest).rows == [{"g": "all", "last": "2026-03-02 10:00"}]


class TestLargeWholeNumbersInFilters:
    # Ids past 2**53 (snowflake ids, order numbers) are compared exactly, not as floats.
    IDS = [{"id": 9007199254740992, "name": "a"}, {"id": 9007199254740993, "name": "b"}]

    @pytest.mark.parametrize(
        ("op", "value", "names"),
        [
            ("eq", 9007199254740993, ["b"]),
            ("ne", 9007199254740993, ["a"]),
            ("gt", 9007199254740992, ["b"]),
            ("in", [9007199254740993], ["b"]),
            ("between", [9007199254740993, 9007199254740993], ["b"]),
            ("eq", 9007199254740993.0, ["a", "b"]),  # a float names both: it cannot tell them apart
        ],
    )
    def test_a_whole_value_matches_only_its_own_number(self, op: str, value: Any, names: list[str]) -> None:
        answer = run(self.IDS, query(filter=[{"column": "id", "op": op, "value": value}])).rows
        assert [row["name"] for row in answer] == names

    def test_a_dashboards_condition_sent_as_text_is_exact_too(self) -> None:
        where = [Condition(column="id", op="eq", value="9007199254740992")]
        assert [row["name"] for row in run(self.IDS, None, where=where).rows] == ["a"]

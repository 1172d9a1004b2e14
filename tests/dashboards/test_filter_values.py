"""Dashboard filters (SPEC §13) as a viewer picks them in a page's address, over a klip's rows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tenantry.dashboards.live import choose, parse_filters
from tenantry.klips.query import columns_of, run
from tenantry.klips.spec import DashboardFilter

TODAY = date(2026, 3, 20)


def shown(
    rows: list[dict[str, Any]], filters: list[DashboardFilter], params: list[tuple[str, str]]
) -> list[Any]:
    """The rows a klip without a query shows once the viewer's `?f.<id>=` values apply."""
    chosen = choose(filters, parse_filters(params), TODAY)
    return run(rows, None, where=chosen.where(columns_of(rows))).rows


def select(column: str) -> list[DashboardFilter]:
    return [DashboardFilter.model_validate({"id": "s", "kind": "select", "column": column})]


PERIOD = [DashboardFilter.model_validate({"id": "p", "kind": "date_range", "column": "at"})]

# CSV cells keep their text as it is, and a select offers each distinct value as it is.
REGIONS = [{"region": " south", "v": 1}, {"region": "north ", "v": 2}, {"region": "north", "v": 3}]


@pytest.mark.parametrize(("picked", "v"), [(" south", 1), ("north ", 2), ("north", 3)])
def test_a_select_value_with_spaces_around_it_shows_its_own_rows(picked: str, v: int) -> None:
    assert [row["v"] for row in shown(REGIONS, select("region"), [("f.s", picked)])] == [v]


def test_a_select_on_a_large_id_shows_that_ids_row_only() -> None:
    rows = [{"id": 9007199254740992, "name": "a"}, {"id": 9007199254740993, "name": "b"}]
    assert [row["name"] for row in shown(rows, select("id"), [("f.s", "9007199254740993")])] == ["b"]
    assert [row["name"] for row in shown(rows, select("id"), [("f.s", "9007199254740992")])] == ["a"]


def test_a_date_range_sent_with_spaces_around_it_still_applies() -> None:
    rows = [{"at": "2026-03-15", "v": 1}, {"at": "2026-02-15", "v": 2}]
    assert [row["v"] for row in shown(rows, PERIOD, [("f.p", " this_month ")])] == [1]


# One "n/a" makes the column text: a range ending on a day still holds that whole day.
EVENTS = [
    {"at": "2026-03-31T18:00", "v": 1},
    {"at": "2026-03-15", "v": 2},
    {"at": "2026-02-28T23:00", "v": 3},
    {"at": "n/a", "v": 4},
]


@pytest.mark.parametrize("period", ["this_month", "2026-03-01..2026-03-31"])
def test_a_date_range_holds_a_datetime_of_its_last_day_in_a_column_with_a_stray_text(period: str) -> None:
    assert columns_of(EVENTS)["at"] == "text"
    assert [row["v"] for row in shown(EVENTS, PERIOD, [("f.p", period)])] == [1, 2]

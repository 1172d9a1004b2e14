"""Dates at the edges of the calendar through the product: previews, klips on published pages
and date-range comparisons, for partners east of UTC (SPEC §13)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.content import inline_source


def preview_where(http, partner, rows: list[dict[str, Any]], column: str, value: str):
    """The preview of a table klip over these rows, keeping those whose `column` equals `value`."""
    source_id = inline_source(http, partner, None, rows)
    body = {
        "datasource_id": source_id,
        "kind": "table",
        "query": {"filter": [{"column": column, "op": "eq", "value": value}]},
    }
    return http.post("/api/1/klips/preview", json=body, headers=partner.headers)


class TestPreviewsOverTheCalendarsEdges:
    """Values past Python's calendar (years 1 to 9999) in previews and klips: answered, never a 500."""

    @pytest.mark.parametrize("literal", ["9999-12-31T23:00-05:00", "0001-01-01T00:30+01:00"])
    def test_a_preview_filtering_on_an_offset_literal_past_the_calendar_finds_its_row(
        self, http, partner, literal: str
    ) -> None:
        response = preview_where(http, partner, [{"at": literal, "n": 1}], "at", literal)
        assert response.status_code == 200, response.text
        assert literal in response.text

    def test_a_klip_filtering_on_an_offset_literal_past_the_calendar_is_added(self, http, partner) -> None:
        literal = "9999-12-31T23:00-05:00"
        source_id = inline_source(http, partner, None, [{"at": literal, "n": 1}])
        body = {
            "name": "Edges",
            "klips": [
                {
                    "title": "Rows",
                    "kind": "table",
                    "columns": {},
                    "datasource_id": source_id,
                    "query": {"filter": [{"column": "at", "op": "eq", "value": literal}]},
                }
            ],
        }
        response = http.post("/api/1/partner/dashboards", json=body, headers=partner.headers)
        assert response.status_code == 201, response.text

    def test_a_preview_over_a_source_with_an_instant_past_year_9999_is_answered(self, http, partner) -> None:
        rows = [{"at": "2026-04-30T10:00:00Z", "n": 1}, {"at": "9999-12-31T23:00-0099", "n": 2}]
        source_id = inline_source(http, partner, None, rows)
        body = {"datasource_id": source_id, "kind": "table", "query": {"sort": [{"column": "n"}]}}
        response = http.post("/api/1/klips/preview", json=body, headers=partner.headers)
        assert response.status_code == 200, response.text


NEVER = "9999-12-31T23:59:59Z"  # the usual "never expires": 10000-01-01 00:59:59 in Paris
SUBSCRIPTIONS = [
    {"expires": "2026-05-31T22:00:00Z", "seats": 3},
    {"expires": NEVER, "seats": 5},
]
SEATS = {
    "title": "Seats",
    "kind": "value",
    "columns": {"value": "total"},
    "query": {"aggregate": [{"fn": "sum", "column": "seats", "as": "total"}]},
}


def _published(http, partner, dashboard_id: int) -> str:
    response = http.post(
        f"/api/1/dashboards/{dashboard_id}/published-links", json={"name": "Wall"}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["url"]).removeprefix("http://127.0.0.1:8000")


def _move_partner_to(http, partner, timezone: str) -> None:
    moved = http.patch("/api/1/partner", json={"timezone": timezone}, headers=partner.headers)
    assert moved.status_code == 200, moved.text


class TestNeverExpiresInAPartnerEastOfUtc:
    """A source marks what never expires with 9999-12-31T23:59:59Z. For a partner in Paris that
    instant is on 10000-01-01, a day Python's date cannot hold: value and literal keep the day of
    their text, 9999-12-31, and still meet."""

    def test_a_preview_filtering_on_the_sentinel_finds_its_row(self, http, partner) -> None:
        _move_partner_to(http, partner, "Europe/Paris")
        response = preview_where(http, partner, SUBSCRIPTIONS, "expires", NEVER)
        assert response.status_code == 200, response.text
        assert NEVER in response.text and "2026-05-31" not in response.text

    def test_a_klip_filtering_on_the_sentinel_is_drawn_after_the_partner_moves_east(
        self, http, partner
    ) -> None:
        source_id = inline_source(http, partner, None, SUBSCRIPTIONS)
        klip = {
            **SEATS,
            "datasource_id": source_id,
            "query": {**SEATS["query"], "filter": [{"column": "expires", "op": "eq", "value": NEVER}]},
        }
        created = http.post(
            "/api/1/partner/dashboards", json={"name": "Seats", "klips": [klip]}, headers=partner.headers
        )
        assert created.status_code == 201, created.text
        url = _published(http, partner, created.json()["id"])
        assert "could not be drawn" not in http.get(url).text  # in UTC: drawn
        _move_partner_to(http, partner, "Europe/Paris")
        assert "could not be drawn" not in http.get(url).text

    def test_choosing_the_sentinel_in_a_select_filter_draws_the_klips(self, http, partner) -> None:
        _move_partner_to(http, partner, "Pacific/Kiritimati")
        source_id = inline_source(http, partner, None, SUBSCRIPTIONS)
        body = {
            "name": "Seats",
            "filters": [{"id": "expires", "kind": "select", "column": "expires"}],
            "klips": [{**SEATS, "datasource_id": source_id}],
        }
        created = http.post("/api/1/partner/dashboards", json=body, headers=partner.headers)
        assert created.status_code == 201, created.text
        url = _published(http, partner, created.json()["id"])
        page = http.get(url)
        assert page.status_code == 200
        assert f'<option value="{NEVER}">' in page.text  # the filter bar offers it
        chosen = http.get(url, params={"f.expires": NEVER})
        assert chosen.status_code == 200
        assert "could not be drawn" not in chosen.text


class TestPreviousPeriodAtTheStartOfTheCalendar:
    def test_a_range_in_year_1_draws_its_comparison_klip(self, http, partner) -> None:
        rows = [{"day": "0001-01-03", "sales": 5}, {"day": "2026-03-01", "sales": 7}]
        source_id = inline_source(http, partner, None, rows)
        body = {
            "name": "Daily",
            "filters": [{"id": "period", "kind": "date_range", "column": "day"}],
            "klips": [
                {
                    "title": "Sales",
                    "kind": "value",
                    "columns": {"value": "total"},
                    "query": {"aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]},
                    "compare": "previous_period",
                    "datasource_id": source_id,
                }
            ],
        }
        created = http.post("/api/1/partner/dashboards", json=body, headers=partner.headers)
        assert created.status_code == 201, created.text
        url = _published(http, partner, created.json()["id"])
        # The 7 days before 0001-01-01 do not exist: no comparison, but the number is shown.
        page = http.get(url, params={"f.period": "0001-01-01..0001-01-07"})
        assert page.status_code == 200
        assert "could not be drawn" not in page.text

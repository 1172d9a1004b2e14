"""SPEC §13: klips over a source with nothing to read yet, a url source never refreshed (no rows)
or rows that are all empty objects (no columns). Every column a klip names is then taken as
empty: the klip is saved, previewed and drawn with no data (or a count of its rows), never
refused as if its source had changed, and never a server error."""

from __future__ import annotations

from typing import Any

import pytest

from tenantry.klips.query import QueryError, Table, check, columns_of, run
from tenantry.klips.spec import KlipBody, Query
from tests.content import inline_source
from tests.dashboards.test_klips import published, said, shows

BAR_BY_MONTH = {
    "title": "By month",
    "kind": "bar",
    "columns": {"x": "month", "y": "sales"},
    "query": {"sort": [{"column": "month"}]},
}
TOP_ROWS = {
    "title": "Top rows",
    "kind": "table",
    "query": {"sort": [{"column": "amount", "desc": True}], "limit": 10},
}
ROW_COUNT = {
    "title": "Rows",
    "kind": "value",
    "columns": {"value": "n"},
    "query": {"aggregate": [{"fn": "count", "as": "n"}]},
}
SALES_TOTAL = {
    "title": "Sales",
    "kind": "value",
    "columns": {"value": "total"},
    "query": {"aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]},
}
PLAIN_TABLE = {"title": "Everything", "kind": "table"}


def body(fields: dict[str, Any]) -> KlipBody:
    return KlipBody.model_validate({"datasource_id": 1, **{k: v for k, v in fields.items() if k != "title"}})


def query(fields: dict[str, Any]) -> Query:
    return Query.model_validate(fields["query"])


def url_source(http, partner) -> int:
    """A url source that was never refreshed: it has no rows yet (the address is never fetched)."""
    response = http.post(
        "/api/1/partner/datasources",
        json={"name": "Feed", "kind": "url", "url": "https://feed.example.test/sales.csv", "format": "csv"},
        headers=partner.headers,
    )
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] in (0, None)
    return int(response.json()["id"])


def preview(http, partner, source_id: int, klip: dict[str, Any]):
    return http.post(
        "/api/1/klips/preview", json={**klip, "datasource_id": source_id}, headers=partner.headers
    )


def dashboard(http, partner, source_id: int, *klips: dict[str, Any]):
    payload = {"name": "Feed", "klips": [{**klip, "datasource_id": source_id} for klip in klips]}
    return http.post("/api/1/partner/dashboards", json=payload, headers=partner.headers)


def dashboards(http, partner) -> list[Any]:
    response = http.get("/api/1/partner/dashboards", headers=partner.headers)
    assert response.status_code == 200
    return list(response.json()["items"])


class TestAQueryOverRowsWithoutColumns:
    def test_a_count_counts_the_rows(self) -> None:
        assert run([{}, {}], query(ROW_COUNT)).rows == [{"n": 2}]

    def test_rows_without_a_query_are_answered_as_they_are(self) -> None:
        assert run([{}], None) == Table([], [{}])

    def test_a_sort_and_limit_keep_the_rows(self) -> None:
        assert run([{}, {}, {}], Query.model_validate({"sort": [{"column": "amount"}], "limit": 2})).rows == [
            {},
            {},
        ]

    def test_a_sum_of_a_column_they_lack_is_taken_over_an_empty_column(self) -> None:
        check(body(SALES_TOTAL), columns_of([{}, {}]))
        assert run([{}, {}], query(SALES_TOTAL)).columns == ["total"]


class TestAQueryOverASourceWithoutRowsTakesItsSortColumnsAsEmpty:
    def test_a_table_sorted_on_a_column_passes_the_check(self) -> None:
        assert "amount" in check(body(TOP_ROWS), {})

    def test_a_bar_sorted_on_its_mapped_column_passes_the_check_and_runs(self) -> None:
        check(body(BAR_BY_MONTH), {})
        assert run([], query(BAR_BY_MONTH)).rows == []

    def test_a_grouped_sort_on_a_column_the_output_lacks_is_still_refused(self) -> None:
        grouped = {
            "kind": "table",
            "query": {"group_by": ["region"], "sort": [{"column": "amount"}]},
        }
        with pytest.raises(QueryError) as raised:
            check(body(grouped), {})
        assert raised.value.field == "query.sort[0].column"


class TestPreviewOverASourceWithNothingToRead:
    def test_a_bar_sorted_on_its_x_column_over_a_source_without_rows_shows_no_data(self, http, partner):
        response = preview(http, partner, url_source(http, partner), BAR_BY_MONTH)
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == []
        assert "No data yet" in response.json()["svg"]

    def test_a_count_over_rows_without_columns_counts_them(self, http, partner):
        source_id = inline_source(http, partner, None, [{}, {}])
        response = preview(http, partner, source_id, ROW_COUNT)
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == [{"n": 2}]

    def test_a_sum_over_rows_without_columns_is_answered(self, http, partner):
        source_id = inline_source(http, partner, None, [{}, {}])
        response = preview(http, partner, source_id, SALES_TOTAL)
        assert response.status_code == 200, response.text
        assert response.json()["columns"] == ["total"]

    def test_a_plain_table_over_rows_without_columns_answers_the_rows(self, http, partner):
        source_id = inline_source(http, partner, None, [{}])
        response = preview(http, partner, source_id, PLAIN_TABLE)
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == [{}]


class TestCreatingADashboardOverASourceWithoutRows:
    def test_a_table_sorted_on_a_column_is_saved(self, http, partner):
        response = dashboard(http, partner, url_source(http, partner), TOP_ROWS)
        assert response.status_code == 201, response.text
        assert response.json()["klips"][0]["query"]["sort"] == [{"column": "amount", "desc": True}]

    def test_a_grouped_table_sorted_on_a_column_its_output_lacks_is_refused_and_nothing_is_saved(
        self, http, partner
    ):
        source_id = url_source(http, partner)
        before = dashboards(http, partner)
        grouped = {
            "title": "Regions",
            "kind": "table",
            "query": {"group_by": ["region"], "sort": [{"column": "x"}]},
        }
        response = dashboard(http, partner, source_id, grouped)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "query.sort[0].column" in response.json()["detail"]
        assert dashboards(http, partner) == before


class TestThePublishedPageOverASourceWithNothingToRead:
    def test_a_bar_sorted_on_its_x_column_over_a_source_without_rows_says_no_data_yet(self, http, partner):
        created = dashboard(http, partner, url_source(http, partner), BAR_BY_MONTH)
        assert created.status_code == 201, created.text
        page = http.get(published(http, partner, created.json()["id"]))
        assert page.status_code == 200
        assert "Needs attention" not in page.text
        assert said(page.text, "By month") == "No data yet"

    def test_klips_over_rows_without_columns_are_drawn(self, http, partner, caplog):
        source_id = inline_source(http, partner, None, [{}, {}])
        created = dashboard(http, partner, source_id, PLAIN_TABLE, ROW_COUNT)
        assert created.status_code == 201, created.text
        page = http.get(published(http, partner, created.json()["id"]))
        assert page.status_code == 200
        assert "could not be drawn" not in page.text
        assert "Needs attention" not in page.text
        assert "klip_draw_failed" not in caplog.text
        assert shows(page.text, "Rows") == "2"

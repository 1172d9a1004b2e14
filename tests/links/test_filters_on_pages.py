"""A dashboard's filters as a visitor uses them: on a published page, in the portal and through the
export endpoint; clearing a default, a link's password, a bad value, and what a new value costs
(README "Klips, queries and filters", "Dashboards, exports and published links")."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards.live import PageCache
from tests.content import pdf_text
from tests.dashboards.test_klips import DAILY
from tests.factories import PASSWORD, add_user, drop_every_connection, new_client, sign_in

TOTAL = {
    "title": "Sales",
    "kind": "value",
    "columns": {"value": "total"},
    "query": {"aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]},
}
# Defaults: the last 7 days (the tests' clock says 2026-03-10) and the North: 100 of the 200.
DEFAULTED = [
    {"id": "period", "kind": "date_range", "column": "day", "default": "last_7_days"},
    {"id": "region", "kind": "select", "column": "region", "default": "North"},
]
PLAIN = [
    {"id": "period", "kind": "date_range", "column": "day"},
    {"id": "region", "kind": "select", "column": "region"},
]


def source(http, partner, client_id: int | None, rows: list[dict[str, Any]]) -> int:
    path = f"/api/1/clients/{client_id}/datasources" if client_id else "/api/1/partner/datasources"
    body = {"name": "Sales", "kind": "inline", "rows": rows}
    response = http.post(path, json=body, headers=partner.headers)
    assert response.status_code == 201, response.text[:500]
    return int(response.json()["id"])


def board(http, partner, *, client_id: int | None = None, filters=PLAIN, rows=DAILY, klips=(TOTAL,)) -> int:
    source_id = source(http, partner, client_id, rows)
    path = f"/api/1/clients/{client_id}/dashboards" if client_id else "/api/1/partner/dashboards"
    body = {"name": "Daily", "filters": filters, "klips": [{**k, "datasource_id": source_id} for k in klips]}
    response = http.post(path, json=body, headers=partner.headers)
    assert response.status_code == 201, response.text[:500]
    return int(response.json()["id"])


def published(http, partner, dashboard_id: int, **body: Any) -> str:
    response = http.post(
        f"/api/1/dashboards/{dashboard_id}/published-links",
        json={"name": "Wall", **body},
        headers=partner.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["url"]).removeprefix("http://127.0.0.1:8000")


def shows(page: str, title: str = "Sales") -> str:
    """The number a value klip shows (its drawing's text alternative, before any comparison)."""
    found = re.search(rf'role="img" aria-label="{re.escape(title)}"><desc>([^<]*)</desc>', page)
    assert found is not None, f"no klip {title!r} drawn"
    return found[1].split(",")[0]


# --- "Any time" and "All" -------------------------------------------------------------------------


def test_any_time_and_all_in_a_published_pages_filter_bar_override_the_filters_defaults(http, partner):
    """The filter bar offers "Any time" and "All" (`value=""`): chosen, they clear the filters'
    defaults, and the download links carry the cleared choice."""
    url = published(http, partner, board(http, partner, filters=DEFAULTED))
    page = http.get(url)
    assert shows(page.text) == "100"  # the defaults
    assert '<option value="">Any time</option>' in page.text and '<option value="">All</option>' in page.text
    # What the form sends when "Any time" (and no custom range) and "All" are chosen.
    everything = http.get(url + "?f.period=&f.period=&f.region=")
    assert everything.status_code == 200
    assert shows(everything.text) == "200"
    assert " selected>" not in everything.text  # the bar shows "Any time" and "All", the first options


def test_an_export_can_be_asked_for_every_row_when_the_filters_have_defaults(http, partner):
    dashboard_id = board(http, partner, filters=DEFAULTED)
    path = f"/api/1/dashboards/{dashboard_id}/export?format=pdf&f.period=&f.region="
    answer = http.get(path, headers=partner.headers)
    assert answer.status_code == 200
    assert "200" in pdf_text(answer.content).split()


# --- A link's password ----------------------------------------------------------------------------


def test_giving_a_links_password_keeps_the_filter_values_of_the_address_it_was_given_on(http, partner):
    """Someone sent `/published/<token>?f.region=North` types the password on that address, and
    is sent back to it, filter values and all."""
    url = published(http, partner, board(http, partner), password="open sesame")
    asked = http.get(url + "?f.region=North")
    assert asked.status_code == 401
    given = http.post(url + "?f.region=North", data={"password": "open sesame"}, follow_redirects=False)
    assert given.status_code == 303
    assert "f.region=North" in given.headers["location"]
    assert shows(http.get(given.headers["location"]).text) == "130"


# --- The portal's refusal -------------------------------------------------------------------------


def test_a_bad_filter_value_in_the_portal_is_a_422_headed_not_possible(http, partner):
    client_id = new_client(http, partner, "active")
    add_user(http, partner, client_id, "admin@client.test")
    dashboard_id = board(http, partner, client_id=client_id)
    assert sign_in(http, "admin@client.test", PASSWORD).status_code == 303
    page = http.get(f"/app/dashboards/{dashboard_id}", params={"f.period": "next_week"})
    assert page.status_code == 422
    assert "f.period" in page.text
    heading = re.search(r"<h1>([^<]*)</h1>", page.text)
    assert heading is not None and heading[1] == "Not possible", heading


# --- Cost of a new filter value -------------------------------------------------------------------


def test_a_new_filter_value_does_not_decode_the_sources_whole_snapshot_again(http, partner, app):
    """Any visitor may send a new choice of filter values with each request: the queries run again
    over the table the query cache loaded already, and the filter bar's choices are the ones
    worked out for that version; the snapshot is not read and decoded again (about 100 ms a
    view for a 50,000-row source, where the query and the drawing take 3 ms)."""
    url = published(http, partner, board(http, partner))
    assert http.get(url).status_code == 200  # the source's version is loaded and drawn once
    snapshot_reads: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args: Any) -> None:
        if re.search(r"data_sources\.rows\b", statement):
            snapshot_reads.append(statement)

    engine = app.state.services.database.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for region in ("North", "South", "East"):
            assert shows(http.get(url, params={"f.region": region}).text) in ("130", "70", "0")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert snapshot_reads == []
    # A refresh is a new version: its rows are read, once for the drawings and once for the choices.
    # (here: the same rows again, sent as a new inline snapshot)


# --- Memory held for distinct filter values -------------------------------------------------------


def _big_board(http, partner) -> int:
    """A dashboard as large as the limits allow: 50 full-size klips (lines of three series,
    tables, bars) over 336 rows, with a date filter."""
    rows = [
        {
            "day": f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}",
            "region": f"R{i % 300}",
            "a": i * 1.5,
            "b": i * 2.25,
            "c": i % 17,
            "note": "x" * 60,
        }
        for i in range(336)
    ]
    source_id = source(http, partner, None, rows)
    kinds = [
        {"kind": "line", "columns": {"x": "day"}, "series": [{"column": name} for name in "abc"]},
        {"kind": "table", "columns": {}},
        {"kind": "bar", "columns": {"x": "region", "y": "a"}},
    ]
    klips = [
        {**kinds[i % 3], "title": f"K{i}", "datasource_id": source_id, "size": {"w": 12, "h": 6}}
        for i in range(50)
    ]
    body = {"name": "Big", "klips": klips, "filters": [{"id": "p", "kind": "date_range", "column": "day"}]}
    response = http.post("/api/1/partner/dashboards", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text[:500]
    return int(response.json()["id"])


def test_distinct_filter_values_keep_the_page_caches_within_their_budgets(http, partner, app):
    """Every distinct `f.<id>` value is a page, a fragment and drawings of its own: a visitor
    cycling values makes the caches drop their oldest entries, not grow past their byte budgets."""
    live = app.state.services.renderer.live
    live.pages.budget = live.klips.budget = 2 * 1024 * 1024
    url = published(http, partner, _big_board(http, partner))
    for day in range(1, 17):
        assert http.get(url, params={"f.p": f"2025-01-{day:02d}..2026-12-31"}).status_code == 200
    assert 0 < live.pages.weight <= live.pages.budget
    assert 0 < live.klips.weight <= live.klips.budget
    assert len(live.pages._entries) < 16  # the oldest pages were dropped


def test_the_page_cache_keeps_its_pages_within_its_budget_of_bytes():
    pages = PageCache(capacity=100, budget=25)
    for version in "abc":
        assert (
            pages.page(version, "N", lambda version=version: f"{version * 10}{pages.slot}")
            == (version * 10 + "N").encode()
        )
    assert (pages.cached("a", "n"), pages.cached("b", "n"), pages.cached("c", "n")) == (
        None,
        b"bbbbbbbbbbn",
        b"ccccccccccn",
    )
    assert pages.weight == 20


def flaky_rows(monkeypatch: pytest.MonkeyPatch, failures: int = 1) -> dict[str, int]:
    """`rows_of` failing `failures` times as a dropped connection would, then answering again."""
    real = dashboards_repo.rows_of
    left = {"left": failures}

    def flaky(db: Any, source_ids: Any) -> Any:
        if left["left"]:
            left["left"] -= 1
            raise OperationalError("SELECT data_sources.rows", {}, Exception("server closed the connection"))
        return real(db, source_ids)

    monkeypatch.setattr(dashboards_repo, "rows_of", flaky)
    return left


def test_a_failed_read_of_a_sources_rows_is_not_kept_as_the_published_pages_drawing(
    http, partner, monkeypatch
):
    """A database fault while a klip's rows are read is the database's, not the klip's: the view
    that met it may fail (503), and no "could not be drawn" card is kept for the next one."""
    url = published(http, partner, board(http, partner, filters=DEFAULTED))
    left = flaky_rows(monkeypatch)
    first = http.get(url)
    assert left["left"] == 0  # the fault happened
    assert first.status_code in (200, 503)
    again = http.get(url)
    assert again.status_code == 200
    assert "could not be drawn" not in again.text
    assert shows(again.text) == "100"


def test_a_failed_read_of_a_sources_rows_does_not_go_out_in_a_download(http, partner, monkeypatch):
    dashboard_id = board(http, partner, filters=DEFAULTED)
    left = flaky_rows(monkeypatch)
    first = http.get(f"/api/1/dashboards/{dashboard_id}/export?format=pdf", headers=partner.headers)
    assert left["left"] == 0
    if first.status_code == 200:  # a file went out: it must not be a broken one
        assert "could not be drawn" not in pdf_text(first.content)
    again = http.get(f"/api/1/dashboards/{dashboard_id}/export?format=pdf", headers=partner.headers)
    assert again.status_code == 200
    text = pdf_text(again.content)
    assert "could not be drawn" not in text and "100" in text.split()


def test_a_connection_dropped_while_drawing_is_not_kept_as_the_published_page(
    database_url, http, partner, database, monkeypatch
):
    """PostgreSQL ends the app's connections (a restart, a failover) between a view's read of the
    versions and of the rows: that view may fail, the next one draws the klip."""
    if not database_url.startswith("postgresql"):
        pytest.skip("ends the server's connections: PostgreSQL only")
    url = published(http, partner, board(http, partner, filters=DEFAULTED))
    real = dashboards_repo.versions_of
    armed = {"left": 1}

    def dropping(db: Any, ids: Any) -> Any:
        found = real(db, ids)
        if armed["left"]:
            armed["left"] -= 1
            drop_every_connection(database)
        return found

    monkeypatch.setattr(dashboards_repo, "versions_of", dropping)
    first = http.get(url)
    assert armed["left"] == 0
    assert first.status_code in (200, 503)
    again = http.get(url)
    assert again.status_code == 200
    assert "could not be drawn" not in again.text
    assert shows(again.text) == "100"


def test_a_bad_filter_value_on_a_portal_download_is_still_headed_download_not_possible(http, partner):
    """A page that names its refusals keeps its heading for bad input too; only "Not found" gives
    way to "Not possible"."""
    client_id = new_client(http, partner, "active")
    add_user(http, partner, client_id, "admin@client.test")
    dashboard_id = board(http, partner, client_id=client_id, filters=DEFAULTED)
    assert sign_in(http, "admin@client.test", PASSWORD).status_code == 303
    page = http.get(f"/app/dashboards/{dashboard_id}/download", params={"f.period": "next_week"})
    assert page.status_code == 422
    assert "f.period" in page.text
    assert re.findall(r"<h1>([^<]*)</h1>", page.text) == ["Download not possible"]

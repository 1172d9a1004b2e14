"""A dashboard's filters in the portal (SPEC §13): a filter bar of `f.<id>` fields whose values
the page, its live poll, its downloads and its e-mail all use."""

from __future__ import annotations

import io
from datetime import date, timedelta

from pypdf import PdfReader

from tests.content import create_dashboard, inline_source
from tests.factories import ADMIN_PASSWORD, PASSWORD, add_user, admin_email, new_client, sign_in


def daily_rows(today: date) -> list[dict[str, object]]:
    """One row a day for 120 days up to today: sales 1 a day, North and South taking turns."""
    return [
        {"day": str(today - timedelta(days=n)), "region": "North" if n % 2 else "South", "sales": 1}
        for n in range(120)
    ]


def total_board(http, partner, rows: list[dict[str, object]], filters: list[dict[str, object]]) -> int:
    """A shared dashboard of one value klip (the sum of `rows`' sales) with these filters, on an
    Active client; its admin signed in."""
    client_id = new_client(http, partner, "active")
    add_user(http, partner, client_id, "admin@client.test")
    source_id = inline_source(http, partner, client_id, rows)
    klip = {
        "title": "Sales total",
        "kind": "value",
        "columns": {"value": "total"},
        "query": {"aggregate": [{"fn": "sum", "column": "sales", "as": "total"}]},
    }
    response = create_dashboard(http, partner, client_id, source_id, klips=[klip], name="Daily")
    assert response.status_code == 201, response.text
    dashboard_id = response.json()["id"]
    patched = http.patch(
        f"/api/1/dashboards/{dashboard_id}", json={"filters": filters}, headers=partner.headers
    )
    assert patched.status_code == 200, patched.text
    assert sign_in(http, "admin@client.test", PASSWORD).status_code == 303
    return int(dashboard_id)


def filtered_board(http, partner, clock) -> int:
    """`total_board` over 120 days of sales with a date filter (default: the last 7 days) and a
    region filter."""
    filters = [
        {"id": "period", "kind": "date_range", "column": "day", "label": "Period", "default": "last_7_days"},
        {"id": "region", "kind": "select", "column": "region"},
    ]
    return total_board(http, partner, daily_rows(clock.now().date()), filters)


class TestTheFilterBar:
    def test_the_page_shows_the_defaults_and_the_select_offers_the_columns_values(self, http, partner, clock):
        board = filtered_board(http, partner, clock)
        page = http.get(f"/app/dashboards/{board}").text
        assert '<option value="last_7_days" selected>Last 7 days</option>' in page
        assert (
            '<option value="North">North</option>' in page and '<option value="South">South</option>' in page
        )
        assert 'aria-label="Sales total"' in page and ">7<" in page

    def test_a_chosen_preset_and_region_change_the_klips_and_the_downloads_carry_them(
        self, http, partner, clock
    ):
        board = filtered_board(http, partner, clock)
        page = http.get(f"/app/dashboards/{board}", params={"f.period": "last_30_days", "f.region": "North"})
        assert page.status_code == 200
        assert ">15<" in page.text
        assert "download?format=pdf&amp;f.period=last_30_days&amp;f.region=North" in page.text
        assert '<input type="hidden" name="f.period" value="last_30_days">' in page.text

    def test_a_custom_range_typed_after_the_preset_wins(self, http, partner, clock):
        board = filtered_board(http, partner, clock)
        today = clock.now().date()
        custom = f"{today - timedelta(days=9)}..{today}"
        page = http.get(f"/app/dashboards/{board}?f.period=last_7_days&f.period={custom}")
        assert ">10<" in page.text
        assert f'value="{custom}"' in page.text

    def test_the_live_poll_keeps_the_filters(self, http, partner, clock):
        board = filtered_board(http, partner, clock)
        plain = http.get(f"/app/dashboards/{board}/live").json()
        filtered = http.get(f"/app/dashboards/{board}/live", params={"f.period": "last_90_days"}).json()
        assert plain["version"] != filtered["version"]
        assert ">90<" in filtered["html"]

    def test_a_value_that_means_nothing_is_refused_naming_the_filter(self, http, partner, clock):
        board = filtered_board(http, partner, clock)
        page = http.get(f"/app/dashboards/{board}", params={"f.period": "next_week"})
        assert page.status_code == 422
        assert "f.period" in page.text

    def test_a_filtered_download_is_a_pdf(self, http, partner, clock):
        board = filtered_board(http, partner, clock)
        answer = http.get(
            f"/app/dashboards/{board}/download", params={"format": "pdf", "f.period": "last_30_days"}
        )
        assert answer.status_code == 200 and answer.content.startswith(b"%PDF")
        refused = http.get(f"/app/dashboards/{board}/download", params={"format": "pdf", "f.period": "soon"})
        assert refused.status_code == 422


def test_the_portal_and_its_download_put_a_timestamp_on_its_day_in_the_partners_timezone(
    http, partner, clock
):
    # 2026-02-28T23:30Z is 1 March 00:30 in Paris; 2026-03-31T22:30Z is 1 April 00:30 there.
    moved = http.patch("/api/1/partner", json={"timezone": "Europe/Paris"}, headers=partner.headers)
    assert moved.status_code == 200
    rows = [
        {"at": "2026-02-28T23:30:00Z", "sales": 5},
        {"at": "2026-03-05T10:00:00Z", "sales": 7},
        {"at": "2026-03-31T22:30:00Z", "sales": 1000},
    ]
    filters = [{"id": "period", "kind": "date_range", "column": "at", "default": "this_month"}]
    board = total_board(http, partner, rows, filters)
    page = http.get(f"/app/dashboards/{board}")
    assert page.status_code == 200
    assert 'aria-label="Sales total"><desc>12' in page.text
    download = http.get(f"/app/dashboards/{board}/download", params={"format": "pdf"})
    assert download.status_code == 200
    assert "12" in pdf_text(download.content).split()


def pdf_text(data: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


class TestTheConsole:
    def test_a_console_download_takes_the_same_filter_values_as_the_page(self, http, partner, clock, db):
        board = filtered_board(http, partner, clock)
        http.cookies.clear()  # the client admin signs out; the partner's admin signs in
        signed = sign_in(http, admin_email(db, partner), ADMIN_PASSWORD)
        assert signed.status_code == 303, signed.text[:2000]
        url = f"/partner/dashboards/{board}/download"
        # The default is the last 7 days: 7 sales; the last 30 days: 30; the North only: 15 of them.
        default = http.get(url, params={"format": "pdf"})
        chosen = http.get(url, params={"format": "pdf", "f.period": "last_30_days"})
        north = http.get(url, params={"format": "pdf", "f.period": "last_30_days", "f.region": "North"})
        assert [a.status_code for a in (default, chosen, north)] == [200, 200, 200], default.text[:3000]
        texts = [pdf_text(a.content) for a in (default, chosen, north)]
        assert "Sales total" in texts[0]
        assert [("7" in texts[0].split()), ("30" in texts[1].split()), ("15" in texts[2].split())] == [
            True,
            True,
            True,
        ]
        refused = http.get(url, params={"format": "pdf", "f.period": "soon"})
        assert refused.status_code == 422

"""A client's own timezone (SPEC §13: dashboards count their days "in the client's timezone (the
partner's unless set)"): kept on the client, changed and cleared through the API and the console,
and used wherever a client's dashboard counts days: published pages, the portal, downloads,
previews and scheduled reports. Statements and the meter keep the partner's days."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tenantry.db.models import AuditEvent
from tests.content import client_key, make_client
from tests.dashboards.test_klips import DAILY, board, published, shows
from tests.factories import PASSWORD, client_with_user, post_form, sign_in

# The tests' clock says 2026-03-10 12:00 UTC: already 03-11 on Kiritimati (UTC+14).
ELEVENTH = [*DAILY, {"day": "2026-03-11", "region": "East", "sales": 7}]


def client_of(http, partner, client_id: int) -> dict:
    response = http.get(f"/api/1/clients/{client_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()


def set_timezone(http, partner, client_id: int, timezone: str | None) -> None:
    changed = http.patch(f"/api/1/clients/{client_id}", json={"timezone": timezone}, headers=partner.headers)
    assert changed.status_code == 200, changed.text


class TestTheTimezoneField:
    def test_a_new_client_has_none_of_its_own_and_uses_the_partners(self, http, partner):
        client_id = make_client(http, partner)
        assert client_of(http, partner, client_id)["timezone"] is None

    def test_it_is_set_at_creation_changed_and_cleared(self, http, partner):
        created = http.post(
            "/api/1/clients",
            json={"name": "Atoll", "timezone": "Pacific/Kiritimati"},
            headers=partner.headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["timezone"] == "Pacific/Kiritimati"
        client_id = created.json()["id"]

        moved = http.patch(
            f"/api/1/clients/{client_id}", json={"timezone": "Europe/Paris"}, headers=partner.headers
        )
        assert moved.status_code == 200 and moved.json()["timezone"] == "Europe/Paris"
        renamed = http.patch(f"/api/1/clients/{client_id}", json={"name": "Atoll 2"}, headers=partner.headers)
        assert renamed.json()["timezone"] == "Europe/Paris"  # a PATCH without it keeps it
        cleared = http.patch(f"/api/1/clients/{client_id}", json={"timezone": None}, headers=partner.headers)
        assert cleared.status_code == 200 and cleared.json()["timezone"] is None

    def test_a_change_is_in_the_audit_log(self, http, partner, db):
        client_id = make_client(http, partner)
        http.patch(f"/api/1/clients/{client_id}", json={"timezone": "Asia/Tokyo"}, headers=partner.headers)
        details = db.scalars(
            select(AuditEvent.details).where(
                AuditEvent.client_id == client_id, AuditEvent.action == "client.updated"
            )
        ).all()
        assert details == [{"timezone": "Asia/Tokyo"}]

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("Mars/Olympus_Mons", id="a name no database holds"),
            pytest.param("localtime", id="the server's own time"),
            pytest.param("../../etc/passwd", id="a path"),
            pytest.param("posix/Europe/Paris", id="a copy of the database under another folder"),
            pytest.param("", id="an empty name"),
            pytest.param("Europe/Paris\n", id="a line break"),
            pytest.param(7, id="a number"),
        ],
    )
    def test_only_names_of_the_iana_database_are_taken_and_a_refusal_changes_nothing(
        self, http, partner, name
    ):
        client_id = make_client(http, partner)
        http.patch(f"/api/1/clients/{client_id}", json={"timezone": "Europe/Paris"}, headers=partner.headers)
        before = client_of(http, partner, client_id)

        created = http.post("/api/1/clients", json={"name": "Odd", "timezone": name}, headers=partner.headers)
        changed = http.patch(f"/api/1/clients/{client_id}", json={"timezone": name}, headers=partner.headers)

        for response in (created, changed):
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
            assert any(e["loc"][-1] == "timezone" for e in response.json()["errors"]), response.json()
        assert client_of(http, partner, client_id) == before
        assert http.get("/api/1/clients", headers=partner.headers).json()["total"] == 1

    def test_a_client_user_reads_it_but_only_the_partner_sets_it(self, http, partner, db, clock):
        client_id = make_client(http, partner, "active")
        _, headers = client_key(db, clock, partner, client_id, "admin")
        own = http.get(f"/api/1/clients/{client_id}", headers=headers)
        assert own.status_code == 200 and own.json()["timezone"] is None
        refused = http.patch(f"/api/1/clients/{client_id}", json={"timezone": "Asia/Tokyo"}, headers=headers)
        assert refused.status_code in (403, 404), refused.text
        assert client_of(http, partner, client_id)["timezone"] is None

    def test_the_import_takes_a_timezone_column(self, http, partner):
        csv = "name,timezone\nAtoll,Pacific/Kiritimati\nHome,\n"
        imported = http.post(
            "/api/1/clients/import", content=csv, headers={**partner.headers, "Content-Type": "text/csv"}
        )
        assert imported.status_code in (200, 201), imported.text
        zones = {
            c["name"]: c["timezone"]
            for c in http.get("/api/1/clients", headers=partner.headers).json()["items"]
        }
        assert zones == {"Atoll": "Pacific/Kiritimati", "Home": None}

    def test_the_import_refuses_a_line_with_an_unknown_timezone_naming_it(self, http, partner):
        csv = "name,timezone\nAtoll,Pacific/Kiritimati\nNowhere,Mars/Olympus_Mons\n"
        refused = http.post(
            "/api/1/clients/import", content=csv, headers={**partner.headers, "Content-Type": "text/csv"}
        )
        assert refused.status_code == 422, refused.text
        assert "timezone" in refused.text and "line" in refused.text
        assert http.get("/api/1/clients", headers=partner.headers).json()["total"] == 0


class TestDaysCountInTheClientsTimezone:
    def test_a_published_page_counts_today_in_the_clients_timezone_not_the_partners(self, http, partner):
        client_id = make_client(http, partner, "active")
        _, dashboard = board(http, partner, client_id, rows=ELEVENTH)
        url = published(http, partner, dashboard["id"])
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") != "7"  # the partner's 03-10

        set_timezone(http, partner, client_id, "Pacific/Kiritimati")
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") == "7"

        # The partner's own timezone no longer decides this client's days.
        http.patch("/api/1/partner", json={"timezone": "Pacific/Pago_Pago"}, headers=partner.headers)
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") == "7"
        set_timezone(http, partner, client_id, None)
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") != "7"

    def test_a_partners_own_dashboard_keeps_the_partners_days(self, http, partner):
        client_id = make_client(http, partner, "active")
        set_timezone(http, partner, client_id, "Pacific/Kiritimati")
        _, dashboard = board(http, partner, None, rows=ELEVENTH)
        url = published(http, partner, dashboard["id"])
        assert shows(http.get(url, params={"f.period": "today"}).text, "Sales") != "7"

    def test_a_download_is_named_after_and_filtered_by_the_clients_day(self, http, partner):
        client_id = make_client(http, partner, "active")
        set_timezone(http, partner, client_id, "Pacific/Kiritimati")
        _, dashboard = board(http, partner, client_id, rows=ELEVENTH)
        download = http.get(
            f"/api/1/dashboards/{dashboard['id']}/export?format=pdf&f.period=today", headers=partner.headers
        )
        assert download.status_code == 200, download.text
        assert re.search(r'filename="?daily-2026-03-11\.pdf', download.headers["content-disposition"])

    def test_the_portal_counts_today_in_the_clients_timezone(self, http, partner, clock):
        client_id, user, _ = client_with_user(http, partner, clock, "active", "tz@client.test")
        set_timezone(http, partner, client_id, "Pacific/Kiritimati")
        _, dashboard = board(http, partner, client_id, rows=ELEVENTH)
        sign_in(http, user["email"], PASSWORD)
        page = http.get(f"/app/dashboards/{dashboard['id']}", params={"f.period": "today"})
        assert page.status_code == 200, page.text
        assert shows(page.text, "Sales") == "7"

    def test_a_preview_of_the_clients_source_counts_in_its_timezone(self, http, partner):
        client_id = make_client(http, partner, "active")
        set_timezone(http, partner, client_id, "Pacific/Kiritimati")
        source_id, _ = board(http, partner, client_id, rows=[{"day": "2026-03-10T12:30:00Z", "sales": 1}])
        body = {
            "datasource_id": source_id,
            "kind": "table",
            "columns": {"fields": ["day", "sales"]},
            "query": {
                "group_by": [{"column": "day", "bucket": "day"}],
                "aggregate": [{"fn": "sum", "column": "sales", "as": "sales"}],
            },
        }
        preview = http.post("/api/1/klips/preview", json=body, headers=partner.headers)
        assert preview.status_code == 200, preview.text
        assert preview.json()["rows"][0]["day"] == "2026-03-11"  # 02:30 on the 11th, on Kiritimati

    def test_a_schedule_keeps_the_clients_time_unless_told_otherwise(self, http, partner):
        client_id = make_client(http, partner, "active")
        http.patch(f"/api/1/clients/{client_id}", json={"timezone": "Asia/Tokyo"}, headers=partner.headers)
        _, dashboard = board(http, partner, client_id)
        body = {
            "frequency": "daily",
            "time": "09:00",
            "format": "pdf",
            "recipients": {"emails": ["a@b.test"]},
        }
        made = http.post(f"/api/1/dashboards/{dashboard['id']}/schedules", json=body, headers=partner.headers)
        assert made.status_code == 201, made.text
        assert made.json()["timezone"] == "Asia/Tokyo"
        assert made.json()["next_run_at"] == "2026-03-11T00:00:00Z"  # 09:00 in Tokyo

    def test_the_meter_and_statements_keep_the_partners_days(self, http, partner):
        client_id = make_client(http, partner, "active")
        set_timezone(http, partner, client_id, "Pacific/Kiritimati")
        statement = http.get("/api/1/partner/statements/2026-03", headers=partner.headers)
        assert statement.status_code == 200, statement.text
        assert statement.json()["timezone"] == "UTC"


@pytest.mark.usefixtures("partner_session")
class TestTheConsole:
    def test_the_clients_page_sets_and_clears_its_timezone(self, http, partner):
        client_id = make_client(http, partner)
        page = f"/partner/clients/{client_id}"
        shown = http.get(page).text
        assert 'name="timezone"' in shown and "Blank: yours (UTC)" in shown

        post_form(
            http,
            f"{page}/details",
            page,
            name="Client setup",
            description="",
            external_id="",
            timezone="Asia/Tokyo",
        )
        assert client_of(http, partner, client_id)["timezone"] == "Asia/Tokyo"
        assert 'value="Asia/Tokyo"' in http.get(page).text
        post_form(
            http, f"{page}/details", page, name="Client setup", description="", external_id="", timezone=""
        )
        assert client_of(http, partner, client_id)["timezone"] is None

    def test_an_unknown_timezone_is_refused_in_words_and_changes_nothing(self, http, partner):
        client_id = make_client(http, partner)
        page = f"/partner/clients/{client_id}"
        answer = post_form(
            http,
            f"{page}/details",
            page,
            name="Renamed",
            description="",
            external_id="",
            timezone="Mars/Base",
        )
        assert answer.status_code == 303 and answer.headers["location"] == page
        text = http.get(page).text
        assert 'class="error"' in text and "IANA timezone name" in text, text
        assert client_of(http, partner, client_id)["name"] == "Client setup"
        assert client_of(http, partner, client_id)["timezone"] is None

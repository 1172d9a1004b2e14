"""Deleting a client keeps its history (SPEC §12 "History is kept"): no closed statement changes,
and the month in progress counts the client up to its deletion, no further."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from tenantry.db.dashboard_models import DataSource, PublishedLink
from tenantry.db.models import AllocationChange, ApiKey, ClientUser, Dashboard, StatusChange
from tests.billing import at, create, lines_of, statement
from tests.factories import ADMIN_PASSWORD, add_user, admin_email, key_for, sign_in

READY = {"dashboards": 2, "users": 1, "published_links": 1, "api_calls_per_day": 10}


def delete(http, partner, client_id):
    response = http.delete(f"/api/1/clients/{client_id}", headers=partner.headers)
    assert response.status_code == 204, response.text


def names_of(body):
    return sorted({line["client_name"] for line in body["lines"]})


class TestDeletingAClient:
    def test_leaves_a_closed_month_exactly_as_it_was(self, http, partner, clock):
        at(clock, 2026, 3, 1, 9)
        create(http, partner, name="Acme", status="active", resources={"dashboards": 1, "users": 1})
        beta = create(http, partner, name="Beta", status="active", resources={"dashboards": 3, "users": 2})
        at(clock, 2026, 4, 2)
        before = statement(http, partner, "2026-03").json()
        assert names_of(before) == ["Acme", "Beta"]

        delete(http, partner, beta)

        after = statement(http, partner, "2026-03").json()
        assert after == before
        assert after["total"] == "55.00"  # the whole month: Acme 10.00 + 5.00, Beta 30.00 + 10.00
        assert "Beta" in statement(http, partner, "2026-03", accept="text/csv").text

    def test_counts_the_client_in_the_month_in_progress_up_to_its_deletion_only(self, http, partner, clock):
        at(clock, 2026, 4, 1, 9)
        beta = create(http, partner, name="Beta", status="active", resources={"dashboards": 3, "users": 2})
        at(clock, 2026, 4, 10, 12)
        delete(http, partner, beta)
        at(clock, 2026, 4, 20, 12)

        body = statement(http, partner, "2026-04").json()
        # Active from 1 April to noon on 10 April: 10 days of 30, and none projected after that.
        assert lines_of(body) == [("dashboards", 3, 10, "10.00"), ("users", 2, 10, "3.33")]
        assert [line["projected_billable_days"] for line in body["lines"]] == [10, 10]
        assert names_of(body) == ["Beta"]
        assert body["projected_total"] == body["total"] == "13.33"

    def test_a_client_deleted_before_a_month_is_not_in_it(self, http, partner, clock):
        at(clock, 2026, 3, 1, 9)
        beta = create(http, partner, name="Beta", status="active", resources={"dashboards": 3, "users": 2})
        at(clock, 2026, 3, 20, 12)
        delete(http, partner, beta)
        at(clock, 2026, 5, 2)

        assert names_of(statement(http, partner, "2026-03").json()) == ["Beta"]
        april = statement(http, partner, "2026-04").json()
        assert april["lines"] == []
        assert april["total"] == "0.00"

    def test_removes_its_content_and_keeps_its_histories(self, http, partner, clock, db):
        at(clock, 2026, 3, 1, 9)
        client_id = create(http, partner, name="Beta", status="active", resources=READY)
        user = add_user(http, partner, client_id, "user@beta.test")
        key = key_for(http, partner, client_id, user["id"])
        source = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "S", "kind": "inline", "rows": [{"a": 1}]},
            headers=partner.headers,
        ).json()["id"]
        dashboard = http.post(
            f"/api/1/clients/{client_id}/dashboards",
            json={
                "name": "D",
                "klips": [
                    {"title": "A", "kind": "value", "datasource_id": source, "columns": {"value": "a"}}
                ],
            },
            headers=partner.headers,
        ).json()["id"]
        link = http.post(
            f"/api/1/dashboards/{dashboard}/published-links", json={"name": "L"}, headers=partner.headers
        )
        assert link.status_code == 201, link.text

        delete(http, partner, client_id)

        assert http.get("/api/1/me", headers=key).status_code == 401
        for model in (ClientUser, ApiKey, DataSource, Dashboard, PublishedLink):
            assert db.scalar(select(func.count()).select_from(model).where(model.client_id == client_id)) == 0
        for model in (StatusChange, AllocationChange):
            assert db.scalar(select(func.count()).select_from(model).where(model.client_id == client_id)) >= 1
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 404


def test_the_console_statement_page_still_names_a_deleted_client(http, partner, clock, db):
    at(clock, 2026, 3, 1, 9)
    beta = create(http, partner, name="Beta", status="active", resources={"dashboards": 3, "users": 2})
    at(clock, 2026, 3, 11, 12)
    delete(http, partner, beta)
    clock.set(datetime(2026, 3, 21, 12, tzinfo=UTC))
    email = admin_email(db, partner)
    db.rollback()
    assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303
    page = http.get("/partner/statements?month=2026-03")
    assert page.status_code == 200
    assert 'aria-label="Beta: Active 11 days, no account 10 days, not yet 10 days"' in page.text

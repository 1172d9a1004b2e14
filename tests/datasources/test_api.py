"""The data-sources API (SPEC §2, §4, §9) and refreshing one source against a local server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tenantry.datasources.fetch import fetch_rows
from tenantry.datasources.service import refresh_source
from tenantry.db.dashboard_models import DataSource
from tenantry.outbound import Guard
from tests.content import (
    ACTIVE_RESOURCES,
    ROWS,
    create_dashboard,
    dashboard_in,
    inline_source,
    make_client,
    set_status,
)


def create_url_source(http, partner, client_id, url, **extra):
    body = {"name": "Remote", "kind": "url", "url": url, "format": "csv", **extra}
    return http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)


class TestCreatingDataSources:
    def test_an_inline_source_keeps_its_rows_as_the_snapshot(self, http, partner):
        client_id = make_client(http, partner)
        source_id = inline_source(http, partner, client_id)
        body = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
        assert body["row_count"] == 3
        assert body["version"]
        assert body["refresh_requested_at"] is None
        rows = http.get(f"/api/1/datasources/{source_id}/rows?limit=2", headers=partner.headers).json()
        assert rows["items"] == ROWS[:2]
        assert rows["total"] == 3

    @pytest.mark.parametrize(
        ("status", "queued"),
        [("setup", True), ("trial", True), ("trial_expired", False), ("active", True), ("disabled", False)],
    )
    def test_a_new_url_source_is_queued_for_its_first_load_where_the_status_allows(
        self, http, partner, clock, status, queued
    ):
        client_id, _, _ = dashboard_in(http, partner, status, clock)
        response = create_url_source(
            http, partner, client_id, "http://127.0.0.1:1/x.csv", refresh_interval=300
        )
        assert response.status_code == 201
        body = response.json()
        assert (body["refresh_requested_at"] is not None) is queued
        assert body["refresh_interval"] == 300
        assert body["next_refresh_at"] is not None

    @pytest.mark.parametrize(
        "body",
        [
            {"name": "x", "kind": "url", "url": "ftp://example.test/x", "format": "csv"},
            {"name": "x", "kind": "url", "url": "http://127.0.0.1/x", "format": "xml"},
            {
                "name": "x",
                "kind": "url",
                "url": "http://127.0.0.1/x",
                "format": "csv",
                "refresh_interval": 59,
            },
            {"name": "x", "kind": "inline", "rows": [{"a": {"b": 1}}]},
            {"name": "x", "kind": "sql"},
            {"name": "x", "kind": "inline", "rows": [], "colour": "red"},
        ],
    )
    def test_a_malformed_source_is_a_422_and_creates_nothing(self, http, partner, db, body):
        client_id = make_client(http, partner)
        response = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        assert db.scalars(select(DataSource)).first() is None

    def test_another_partners_client_is_not_found(self, http, partner, make_partner):
        client_id = make_client(http, partner)
        other = make_partner()
        response = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "x", "kind": "inline", "rows": []},
            headers=other.headers,
        )
        assert response.status_code == 404

    def test_the_partner_has_its_own_data_sources(self, http, partner):
        inline_source(http, partner, None)
        listing = http.get("/api/1/partner/datasources", headers=partner.headers).json()
        assert [s["client_id"] for s in listing["items"]] == [None]


class TestRefreshRate:
    @pytest.mark.parametrize("status", ["setup", "trial", "trial_expired", "active", "disabled"])
    def test_the_refresh_rate_may_be_set_in_every_status(self, http, partner, clock, status):
        client_id, _, _ = dashboard_in(http, partner, status, clock)
        source_id = create_url_source(http, partner, client_id, "http://127.0.0.1:1/x.csv").json()["id"]
        response = http.patch(
            f"/api/1/datasources/{source_id}", json={"refresh_interval": 3600}, headers=partner.headers
        )
        assert response.status_code == 200
        assert response.json()["refresh_interval"] == 3600


class TestQueueingARefresh:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [("setup", 202), ("trial", 202), ("trial_expired", 409), ("active", 202), ("disabled", 409)],
    )
    def test_a_manual_refresh_is_queued_or_refused_by_status(
        self, http, partner, clock, db, status, expected
    ):
        client_id, _, _ = dashboard_in(http, partner, "setup")
        source_id = create_url_source(http, partner, client_id, "http://127.0.0.1:1/x.csv").json()["id"]
        db.execute(DataSource.__table__.update().values(refresh_requested_at=None))
        db.commit()
        if status != "setup":
            target = "trial" if status == "trial_expired" else "active"
            set_status(http, partner, client_id, target, resources=ACTIVE_RESOURCES)
            if status == "disabled":
                set_status(http, partner, client_id, "disabled")
            if status == "trial_expired":
                clock.advance(days=15)
        response = http.post(f"/api/1/datasources/{source_id}/refresh", headers=partner.headers)
        assert response.status_code == expected
        queued = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
        if expected == 202:
            assert response.json() == {"queued": True}
            assert queued["refresh_requested_at"] is not None
        else:
            assert response.json()["code"] == "status_forbids"
            assert response.json()["client_status"] == status
            assert queued["refresh_requested_at"] is None

    def test_an_inline_source_has_nothing_to_refresh(self, http, partner):
        source_id = inline_source(http, partner, make_client(http, partner))
        response = http.post(f"/api/1/datasources/{source_id}/refresh", headers=partner.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "not_refreshable"


class TestRefreshingOneSource:
    @pytest.fixture
    def fetch(self, settings):
        guard = Guard.from_settings(settings)
        return lambda url, fmt: fetch_rows(url, fmt, guard=guard)

    def test_a_good_fetch_stores_the_rows_and_a_new_version(
        self, http, partner, clock, database, data_server, fetch
    ):
        url = data_server.serve("/s.csv", "month,sales\nJan,1\nFeb,2\n")
        source_id = create_url_source(
            http, partner, make_client(http, partner), url, refresh_interval=120
        ).json()["id"]
        with database.session(write=True) as session:
            source = session.get(DataSource, source_id)
            outcome = refresh_source(session, source, clock.now(), fetch)
            session.commit()
        assert outcome.ok
        body = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
        assert body["row_count"] == 2
        assert body["last_error"] is None
        assert body["refresh_requested_at"] is None
        assert body["last_refreshed_at"] is not None
        expected = (clock.now() + timedelta(seconds=120)).isoformat().replace("+00:00", "Z")
        assert body["next_refresh_at"] == expected

    def test_a_failed_fetch_keeps_the_last_good_snapshot(
        self, http, partner, clock, database, data_server, fetch
    ):
        url = data_server.serve("/s.csv", "month,sales\nJan,1\n")
        source_id = create_url_source(http, partner, make_client(http, partner), url).json()["id"]
        for body, status in [("month,sales\nJan,1\n", 200), ("broken", 500), ("a,b\n1\n", 200)]:
            data_server.serve("/s.csv", body, status=status)
            with database.session(write=True) as session:
                refresh_source(session, session.get(DataSource, source_id), clock.now(), fetch)
                session.commit()
        body = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
        assert body["row_count"] == 1
        assert body["refresh_fail_count"] == 2
        assert "line 2 has 1 fields" in body["last_error"]
        rows = http.get(f"/api/1/datasources/{source_id}/rows", headers=partner.headers).json()
        assert rows["items"] == [{"month": "Jan", "sales": 1}]


class TestDeletingADataSource:
    def test_a_source_shown_by_a_klip_cannot_be_deleted(self, http, partner):
        client_id = make_client(http, partner)
        source_id = inline_source(http, partner, client_id)
        assert create_dashboard(http, partner, client_id, source_id).status_code == 201
        refused = http.delete(f"/api/1/datasources/{source_id}", headers=partner.headers)
        assert refused.status_code == 409
        assert refused.json()["code"] == "in_use"
        unused = inline_source(http, partner, client_id)
        assert http.delete(f"/api/1/datasources/{unused}", headers=partner.headers).status_code == 204
        assert http.get(f"/api/1/datasources/{unused}", headers=partner.headers).status_code == 404

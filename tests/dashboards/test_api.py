"""The dashboards API (SPEC §2, §4, §6, §9): klips, allocation, the partner's pool, shares."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.db.dashboard_models import DataSource, Klip, PublishedLink
from tenantry.db.models import ClientUser
from tests.content import ALL_KINDS, create_dashboard, dashboard_in, inline_source, make_client
from tests.factories import set_status


def usage(http, partner, client_id):
    return http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]


def add_user(db, clock, client_id, email="user@client.test"):
    user = ClientUser(client_id=client_id, email=email, name="U", role="member", created_at=clock.now())
    db.add(user)
    db.commit()
    return user.id


class TestBuildingADashboard:
    def test_a_dashboard_keeps_its_klips_in_order(self, http, partner):
        client_id = make_client(http, partner)
        source_id = inline_source(http, partner, client_id)
        response = create_dashboard(http, partner, client_id, source_id)
        assert response.status_code == 201
        body = response.json()
        assert [k["kind"] for k in body["klips"]] == ["value", "table", "bar", "line", "pie"]
        assert [k["position"] for k in body["klips"]] == [0, 1, 2, 3, 4]
        assert body["klips"][2]["columns"] == {"x": "month", "y": "sales"}
        assert http.get(f"/api/1/dashboards/{body['id']}", headers=partner.headers).json() == body

    def test_klips_can_be_replaced_and_the_dashboard_renamed(self, http, partner):
        client_id = make_client(http, partner)
        source_id = inline_source(http, partner, client_id)
        dashboard_id = create_dashboard(http, partner, client_id, source_id).json()["id"]
        klip = {**ALL_KINDS[0], "datasource_id": source_id}
        response = http.patch(
            f"/api/1/dashboards/{dashboard_id}",
            json={"name": "KPIs", "klips": [klip]},
            headers=partner.headers,
        )
        assert response.status_code == 200
        assert response.json()["name"] == "KPIs"
        assert [k["title"] for k in response.json()["klips"]] == ["Total"]

    @pytest.mark.parametrize(
        "klip",
        [
            {"title": "t", "kind": "bar", "columns": {"x": "month"}},
            {"title": "t", "kind": "pie", "columns": {"value": "sales"}},
            {"title": "t", "kind": "value", "columns": {}},
            {"title": "t", "kind": "sparkle", "columns": {"value": "sales"}},
            {"title": "t", "kind": "value", "columns": {"value": "sales", "colour": "red"}},
        ],
    )
    def test_a_klip_missing_its_columns_is_a_422(self, http, partner, klip):
        client_id = make_client(http, partner)
        source_id = inline_source(http, partner, client_id)
        response = create_dashboard(http, partner, client_id, source_id, klips=[klip])
        assert response.status_code == 422
        assert usage(http, partner, client_id)["dashboards"] == 0

    def test_a_klip_cannot_show_another_clients_data(self, http, partner):
        mine, theirs = make_client(http, partner), make_client(http, partner)
        their_source = inline_source(http, partner, theirs)
        response = create_dashboard(http, partner, mine, their_source)
        assert response.status_code == 404
        assert usage(http, partner, mine)["dashboards"] == 0

    def test_another_partners_dashboard_is_not_found(self, http, partner, make_partner):
        _, _, dashboard_id = dashboard_in(http, partner, "setup")
        other = make_partner()
        for method in ("get", "delete"):
            assert (
                getattr(http, method)(f"/api/1/dashboards/{dashboard_id}", headers=other.headers).status_code
                == 404
            )


class TestAllocation:
    @pytest.mark.parametrize(
        ("status", "allowed"), [("setup", 3), ("trial", 1), ("active", 1), ("disabled", 3)]
    )
    def test_a_clients_dashboards_are_limited_by_its_allocation_in_trial_and_active(
        self, http, partner, status, allowed
    ):
        client_id = make_client(http, partner)
        source_id = inline_source(http, partner, client_id)
        resources = {"dashboards": 1, "users": 1, "published_links": 0}
        if status == "disabled":
            set_status(http, partner, client_id, "disabled")
        elif status != "setup":
            set_status(http, partner, client_id, status, resources=resources)
        codes = [
            create_dashboard(http, partner, client_id, source_id, klips=[]).status_code for _ in range(3)
        ]
        assert codes.count(201) == allowed
        if allowed < 3:
            refused = create_dashboard(http, partner, client_id, source_id, klips=[])
            assert refused.json()["code"] == "allocation_exceeded"
        assert usage(http, partner, client_id)["dashboards"] == allowed

    def test_deleting_a_dashboard_gives_it_back(self, http, partner):
        client_id = make_client(http, partner, "trial", {"dashboards": 1, "users": 1, "published_links": 1})
        source_id = inline_source(http, partner, client_id)
        dashboard_id = create_dashboard(http, partner, client_id, source_id).json()["id"]
        assert (
            http.post(
                f"/api/1/dashboards/{dashboard_id}/published-links",
                json={"name": "x"},
                headers=partner.headers,
            ).status_code
            == 201
        )
        assert usage(http, partner, client_id) == {
            "dashboards": 1,
            "users": 0,
            "published_links": 1,
            "api_calls_today": 0,
        }
        assert http.delete(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).status_code == 204
        assert usage(http, partner, client_id)["dashboards"] == 0
        assert usage(http, partner, client_id)["published_links"] == 0
        assert create_dashboard(http, partner, client_id, source_id).status_code == 201

    def test_the_partners_own_dashboards_must_fit_the_pool(self, http, make_partner):
        partner = make_partner(dashboards=2)
        make_client(http, partner, "trial", {"dashboards": 1, "users": 1})
        source_id = inline_source(http, partner, None)
        assert create_dashboard(http, partner, None, source_id).status_code == 201
        refused = create_dashboard(http, partner, None, source_id)
        assert refused.status_code == 409
        assert refused.json()["code"] == "pool_exhausted"
        pool = http.get("/api/1/partner", headers=partner.headers).json()["pool"]["dashboards"]
        assert pool == {"total": 2, "used_by_partner": 1, "allocated": 1, "remaining": 0}
        own = http.get("/api/1/partner/dashboards", headers=partner.headers).json()["items"]
        http.delete(f"/api/1/dashboards/{own[0]['id']}", headers=partner.headers)
        assert (
            http.get("/api/1/partner", headers=partner.headers).json()["pool"]["dashboards"][
                "used_by_partner"
            ]
            == 0
        )


class TestSharing:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [("setup", 409), ("trial", 200), ("trial_expired", 409), ("active", 200), ("disabled", 409)],
    )
    def test_sharing_with_client_users_follows_the_status(self, http, partner, clock, db, status, expected):
        client_id, _, dashboard_id = dashboard_in(http, partner, status, clock)
        user_id = add_user(db, clock, client_id)
        response = http.put(
            f"/api/1/dashboards/{dashboard_id}/shares", json={"user_ids": [user_id]}, headers=partner.headers
        )
        assert response.status_code == expected
        shared = http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()["shared_with"]
        if expected == 200:
            assert response.json() == {"dashboard_id": dashboard_id, "user_ids": [user_id]}
            assert shared == [user_id]
        else:
            assert response.json()["code"] == "status_forbids"
            assert "cannot be shared" in response.json()["detail"]
            assert shared == []

    def test_shares_are_replaced_and_only_the_clients_own_users_count(self, http, partner, clock, db):
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        other_client = make_client(http, partner)
        first, second = add_user(db, clock, client_id, "a@c.test"), add_user(db, clock, client_id, "b@c.test")
        stranger = add_user(db, clock, other_client, "s@c.test")
        path = f"/api/1/dashboards/{dashboard_id}/shares"
        assert http.put(path, json={"user_ids": [first, second]}, headers=partner.headers).status_code == 200
        assert http.put(path, json={"user_ids": [second]}, headers=partner.headers).json()["user_ids"] == [
            second
        ]
        refused = http.put(path, json={"user_ids": [second, stranger]}, headers=partner.headers)
        assert refused.status_code == 404
        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=partner.headers).json()[
            "shared_with"
        ] == [second]


class TestDeletingTheClient:
    def test_deleting_a_client_removes_its_sources_dashboards_and_links(self, http, partner, db):
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        link = http.post(
            f"/api/1/dashboards/{dashboard_id}/published-links", json={"name": "x"}, headers=partner.headers
        ).json()
        assert http.delete(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 204
        for model in (DataSource, Klip, PublishedLink):
            assert db.scalar(select(func.count()).select_from(model)) == 0
        assert http.get(link["url"].removeprefix("http://127.0.0.1:8000")).status_code == 404

"""Client keys (SPEC §8, §9 client scope): a client user reaches only its own client's content,
and a member only the dashboards shared with them."""

from __future__ import annotations

from tests.content import (
    client_key,
    create_dashboard,
    dashboard_in,
    inline_source,
    make_client,
    partner_user_headers,
)


class TestClientKeys:
    def test_a_client_admin_builds_and_downloads_in_its_own_client_only(self, http, partner, clock, db):
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        other_id, _, other_dashboard = dashboard_in(http, partner, "active")
        _, headers = client_key(db, clock, partner, client_id, "admin")
        assert http.get(f"/api/1/clients/{client_id}/dashboards", headers=headers).json()["total"] == 1
        assert (
            http.get(f"/api/1/dashboards/{dashboard_id}/export?format=pdf", headers=headers).status_code
            == 200
        )
        source = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "Mine", "kind": "inline", "rows": [{"a": 1}]},
            headers=headers,
        )
        assert source.status_code == 201
        assert http.get(f"/api/1/dashboards/{other_dashboard}", headers=headers).status_code == 404
        assert http.get(f"/api/1/clients/{other_id}/datasources", headers=headers).status_code == 404
        assert http.get("/api/1/partner/dashboards", headers=headers).status_code == 403

    def test_a_member_sees_only_shared_dashboards_and_changes_nothing(self, http, partner, clock, db):
        client_id, source_id, dashboard_id = dashboard_in(http, partner, "active")
        user_id, headers = client_key(db, clock, partner, client_id, "member")
        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=headers).status_code == 404
        shared = http.put(
            f"/api/1/dashboards/{dashboard_id}/shares", json={"user_ids": [user_id]}, headers=partner.headers
        )
        assert shared.status_code == 200
        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=headers).status_code == 200
        assert (
            http.get(f"/api/1/dashboards/{dashboard_id}/export?format=png", headers=headers).status_code
            == 200
        )
        refused = http.patch(f"/api/1/dashboards/{dashboard_id}", json={"name": "Mine"}, headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
        assert http.post(f"/api/1/datasources/{source_id}/refresh", headers=headers).status_code == 403

    def test_a_partner_viewer_reads_but_builds_nothing(self, http, partner, clock, db):
        client_id = make_client(http, partner)
        headers = partner_user_headers(db, clock, partner, "viewer")
        inline_source(http, partner, client_id)
        assert http.get(f"/api/1/clients/{client_id}/datasources", headers=headers).json()["total"] == 1
        refused = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "x", "kind": "inline", "rows": []},
            headers=headers,
        )
        assert refused.status_code == 403


class TestWhatAMemberReads:
    """SPEC §12: a member sees the dashboards shared with them and nothing else of the client."""

    def test_a_member_lists_only_the_dashboards_shared_with_them(self, http, partner, clock, db):
        client_id, source_id, shared_id = dashboard_in(http, partner, "active")
        private = create_dashboard(http, partner, client_id, source_id, name="Board meeting")
        assert private.status_code == 201, private.text
        user_id, headers = client_key(db, clock, partner, client_id, "member")
        share = {"user_ids": [user_id]}
        assert (
            http.put(f"/api/1/dashboards/{shared_id}/shares", json=share, headers=partner.headers).status_code
            == 200
        )

        listed = http.get(f"/api/1/clients/{client_id}/dashboards", headers=headers)

        assert listed.status_code == 200
        assert [d["id"] for d in listed.json()["items"]] == [shared_id]
        assert listed.json()["total"] == 1
        assert "Board meeting" not in listed.text

    def test_a_member_does_not_learn_who_else_a_dashboard_is_shared_with(self, http, partner, clock, db):
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        member_id, headers = client_key(db, clock, partner, client_id, "member")
        admin_id, admin_headers = client_key(db, clock, partner, client_id, "admin")
        share = {"user_ids": [member_id, admin_id]}
        assert (
            http.put(
                f"/api/1/dashboards/{dashboard_id}/shares", json=share, headers=partner.headers
            ).status_code
            == 200
        )

        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=headers).json()["shared_with"] == [
            member_id
        ]
        assert http.get(f"/api/1/dashboards/{dashboard_id}", headers=admin_headers).json()[
            "shared_with"
        ] == sorted([member_id, admin_id])

    def test_a_member_reads_no_data_source_its_rows_or_its_address(self, http, partner, clock, db):
        client_id, source_id, dashboard_id = dashboard_in(http, partner, "active")
        user_id, headers = client_key(db, clock, partner, client_id, "member")
        share = {"user_ids": [user_id]}
        assert (
            http.put(
                f"/api/1/dashboards/{dashboard_id}/shares", json=share, headers=partner.headers
            ).status_code
            == 200
        )

        for path in (
            f"/api/1/clients/{client_id}/datasources",
            f"/api/1/datasources/{source_id}",
            f"/api/1/datasources/{source_id}/rows",
        ):
            response = http.get(path, headers=headers)
            assert (response.status_code, response.json()["code"]) == (403, "forbidden"), path
            assert "North" not in response.text

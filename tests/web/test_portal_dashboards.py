"""The client portal's live dashboards (SPEC §9 `/app/...`): the users a dashboard is shared with
see it live, and the page learns of new data by polling its version."""

from __future__ import annotations

import pytest

from tests.content import ROWS, portal_dashboard, share
from tests.factories import PASSWORD, add_user, client_with_user, enter, new_client, sign_in


class TestLiveDashboards:
    def test_a_member_sees_only_the_dashboards_shared_with_them(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test", dashboards=3)
        member = add_user(http, partner, client_id, "member@client.test", role="member")
        shared, _ = portal_dashboard(http, partner, client_id, "Shared board")
        hidden, _ = portal_dashboard(http, partner, client_id, "Private board")
        share(http, partner, shared, member["id"])

        sign_in(http, "member@client.test", PASSWORD)
        home = http.get("/app")
        assert "Shared board" in home.text
        assert "Private board" not in home.text
        page = http.get(f"/app/dashboards/{shared}")
        assert page.status_code == 200
        assert '<figure class="klip klip-table ' in page.text
        assert http.get(f"/app/dashboards/{hidden}").status_code == 404

    def test_the_page_receives_new_klips_when_its_data_changes(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        board, source_id = portal_dashboard(http, partner, client_id)
        sign_in(http, "admin@client.test", PASSWORD)
        first = http.get(f"/app/dashboards/{board}/live").json()
        assert first["available"] is True
        unchanged = http.get(f"/app/dashboards/{board}/live", params={"v": first["version"]}).json()
        assert unchanged == {"available": True, "version": first["version"]}

        new_rows = [{**row, "revenue": 999_999} for row in ROWS]
        patched = http.patch(
            f"/api/1/datasources/{source_id}", json={"rows": new_rows}, headers=partner.headers
        )
        assert patched.status_code == 200, patched.text
        changed = http.get(f"/app/dashboards/{board}/live", params={"v": first["version"]}).json()
        assert changed["version"] != first["version"]
        assert "999" in changed["html"]

    def test_another_clients_dashboard_is_not_found(self, http, partner, clock):
        client_with_user(http, partner, clock, "active", "admin@client.test")
        other_id = new_client(http, partner, "active")
        theirs, _ = portal_dashboard(http, partner, other_id)
        sign_in(http, "admin@client.test", PASSWORD)
        assert http.get(f"/app/dashboards/{theirs}").status_code == 404
        assert http.get(f"/app/dashboards/{theirs}/live").json() == {"available": False}

    def test_a_disabled_clients_user_is_sent_away_at_the_next_poll(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
        board, _ = portal_dashboard(http, partner, client_id)
        sign_in(http, "admin@client.test", PASSWORD)
        assert http.get(f"/app/dashboards/{board}/live").json()["available"] is True
        cookies = dict(http.cookies)
        http.cookies.clear()
        response = http.patch(
            f"/api/1/clients/{client_id}", json={"status": "disabled"}, headers=partner.headers
        )
        assert response.status_code == 200
        http.cookies.update(cookies)
        assert http.get(f"/app/dashboards/{board}/live").json() == {"available": False}

    @pytest.mark.usefixtures("partner_session")
    def test_a_partner_signed_in_as_a_setup_client_sees_its_dashboards(self, http, partner):
        client_id = new_client(http, partner, "setup")
        board, _ = portal_dashboard(http, partner, client_id, "Being built")
        assert enter(http, client_id, "view_only").status_code == 303
        assert "Being built" in http.get("/app").text
        assert http.get(f"/app/dashboards/{board}").status_code == 200

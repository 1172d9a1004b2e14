"""The client portal's forms: e-mail a dashboard, and for the client's admin its users and
published links; refusals come back as sentences."""

from __future__ import annotations

import pytest

from tests.content import portal_dashboard, share
from tests.factories import (
    PASSWORD,
    add_user,
    client_with_user,
    csrf_of,
    enter,
    post_form,
    set_status,
    sign_in,
)


class TestEmail:
    def test_a_member_emails_a_shared_dashboard_and_the_mail_carries_it(
        self, smtp_http, smtp_server, send_mail, partner, clock
    ):
        client_id, user, _ = client_with_user(smtp_http, partner, clock, "active", "admin@client.test")
        board, _ = portal_dashboard(smtp_http, partner, client_id)
        share(smtp_http, partner, board, user["id"])
        sign_in(smtp_http, "admin@client.test", PASSWORD)
        page = f"/app/dashboards/{board}"
        answer = post_form(smtp_http, f"{page}/email", page, to="boss@client.test", format="png")
        assert answer.headers["location"] == page
        assert "is on its way to boss@client.test as PNG" in smtp_http.get(page).text
        assert send_mail() == 1
        (message,) = smtp_server.messages
        assert message["To"] == "boss@client.test"
        assert [p.get_content_type() for p in message.iter_attachments()] == ["image/png"]

    def test_a_malformed_address_is_refused_in_words(self, http, partner, clock):
        client_id, user, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
        board, _ = portal_dashboard(http, partner, client_id)
        share(http, partner, board, user["id"])
        sign_in(http, "admin@client.test", PASSWORD)
        page = f"/app/dashboards/{board}"
        post_form(http, f"{page}/email", page, to="nobody", format="pdf")
        text = http.get(page).text
        assert 'class="error"' in text and "To:" in text


class TestClientAdmin:
    def test_the_clients_admin_adds_and_removes_users(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        sign_in(http, "admin@client.test", PASSWORD)
        post_form(
            http,
            "/app/users",
            "/app",
            email="new@client.test",
            name="Newbie",
            role="member",
            password=PASSWORD,
        )
        assert "Newbie added." in http.get("/app").text
        users = http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()["items"]
        newbie = next(u for u in users if u["email"] == "new@client.test")
        post_form(http, f"/app/users/{newbie['id']}/remove", "/app")
        assert "User removed." in http.get("/app").text

    def test_a_member_sees_no_user_or_link_management(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        add_user(http, partner, client_id, "member@client.test", role="member")
        sign_in(http, "member@client.test", PASSWORD)
        page = http.get("/app").text
        assert 'action="/app/users"' not in page
        post_form(
            http, "/app/users", "/app", email="x@client.test", name="X", role="member", password=PASSWORD
        )
        assert 'class="error"' in http.get("/app").text
        assert http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()["total"] == 2

    def test_the_clients_admin_publishes_and_revokes_a_link(self, http, partner, clock):
        client_id, user, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
        board, _ = portal_dashboard(http, partner, client_id)
        share(http, partner, board, user["id"])
        sign_in(http, "admin@client.test", PASSWORD)
        post_form(http, f"/app/dashboards/{board}/links", "/app", name="Lobby screen")
        home = http.get("/app").text
        url = home.split("created: ")[1].split(" ")[0]
        assert http.get(url.replace("http://127.0.0.1:8000", "")).status_code == 200
        links = http.get(f"/api/1/dashboards/{board}/published-links", headers=partner.headers).json()[
            "items"
        ]
        post_form(http, f"/app/links/{links[0]['id']}/revoke", "/app")
        assert http.get(url.replace("http://127.0.0.1:8000", "")).status_code == 404


@pytest.mark.usefixtures("partner_session")
def test_signed_in_view_only_a_partner_changes_nothing_and_is_told_so(http, partner, clock):
    client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
    enter(http, client_id, "view_only")
    page = http.get("/app").text
    assert 'action="/app/users"' not in page
    post_form(http, "/app/users", "/app", email="x@client.test", name="X", role="member", password=PASSWORD)
    assert "view-only mode" in http.get("/app").text


@pytest.mark.usefixtures("partner_session")
def test_in_setup_a_partner_signed_in_as_the_client_is_refused_users_in_words(http, partner, clock):
    created = http.post("/api/1/clients", json={"name": "Early"}, headers=partner.headers).json()
    enter(http, created["id"], "admin")
    post_form(http, "/app/users", "/app", email="x@client.test", name="X", role="member", password=PASSWORD)
    assert "Users cannot be added while the client is in Setup mode." in http.get("/app").text


def test_a_suspended_client_user_is_signed_out_by_a_form(http, partner, clock):
    client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
    sign_in(http, "admin@client.test", PASSWORD)
    csrf = csrf_of(http.get("/app").text)
    set_status(http, partner, client_id, "disabled")
    answer = http.post("/app/users", data={"csrf_token": csrf, "email": "a@b.test", "name": "A"})
    assert "Your account has been suspended" in answer.text

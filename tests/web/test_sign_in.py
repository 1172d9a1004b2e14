"""Signing in at /login (SPEC §4 sign-in messages): sessions, CSRF, throttling, statuses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tenantry.auth import secrets
from tenantry.db.access_models import WebSession
from tests.factories import (
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_email,
    client_with_user,
    csrf_of,
    new_client,
    set_status,
    sign_in,
)

SUSPENDED = "Your account has been suspended. Please contact your account administrator."
TRIAL_ENDED = "Your trial has ended. Please contact your account administrator."
WRONG = "The e-mail address or password is not correct."


class TestTheForm:
    def test_the_login_page_has_labelled_fields_and_a_csrf_token(self, http):
        page = http.get("/login")
        assert page.status_code == 200
        assert '<label for="email">' in page.text
        assert '<label for="password">' in page.text
        assert len(csrf_of(page.text)) >= 43

    def test_a_post_without_the_csrf_token_is_refused(self, http, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        http.get("/login")
        refused = http.post(
            "/login", data={"email": email, "password": ADMIN_PASSWORD}, follow_redirects=False
        )
        assert refused.status_code == 403
        assert "tenantry_session" not in refused.cookies


class TestPartnerUsers:
    def test_a_partner_user_signs_in_to_the_partner_home(self, http, partner, db, clock):
        email = admin_email(db, partner)
        db.rollback()
        new_client(http, partner, "trial")
        response = sign_in(http, email, ADMIN_PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == "/partner"
        cookie = response.headers["set-cookie"]
        assert "tenantry_session=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
        home = http.get("/partner")
        assert home.status_code == 200
        assert email in home.text
        clients = http.get("/partner/clients")
        assert "Client trial" in clients.text
        assert "14 days left" in clients.text

    def test_the_session_id_is_stored_only_as_a_hash(self, http, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        response = sign_in(http, email, ADMIN_PASSWORD)
        session_id = response.cookies["tenantry_session"].rsplit(".", 1)[0]
        stored = db.scalars(select(WebSession.token_hash)).one()
        assert session_id not in stored

    def test_an_altered_cookie_signs_no_one_in(self, http, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        value = sign_in(http, email, ADMIN_PASSWORD).cookies["tenantry_session"]
        http.cookies.clear()
        http.cookies.set("tenantry_session", value[:-2] + "xx")
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"

    def test_a_session_lasts_twelve_hours(self, http, partner, db, clock):
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        clock.advance(timedelta(hours=11, minutes=59))
        assert http.get("/partner").status_code == 200
        clock.advance(timedelta(minutes=1))
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"

    def test_logout_needs_the_csrf_token_and_ends_the_session(self, http, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        home = http.get("/partner")
        assert http.post("/logout", data={}, follow_redirects=False).status_code == 403
        kept = dict(http.cookies)
        out = http.post("/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
        assert out.headers["location"] == "/login"
        http.cookies.update(kept)
        assert http.get("/partner", follow_redirects=False).status_code == 303
        assert http.get("/api/1/me").status_code == 401


class TestClientUsersByStatus:
    # SPEC §4: client users sign in in Trial and Active; Disabled and an expired trial get exact words.
    @pytest.mark.parametrize(
        ("status", "code", "text"),
        [
            ("trial", 303, None),
            ("active", 303, None),
            ("trial_expired", 403, TRIAL_ENDED),
            ("disabled", 403, SUSPENDED),
        ],
    )
    def test_a_client_user_with_the_right_password(self, http, partner, clock, status, code, text):
        client_with_user(http, partner, clock, status, "user@client.test")
        response = sign_in(http, "user@client.test", PASSWORD)
        assert response.status_code == code
        if text is None:
            assert response.headers["location"] == "/app"
        else:
            assert text in response.text
            assert "tenantry_session" not in response.cookies

    @pytest.mark.parametrize("status", ["trial", "active", "trial_expired", "disabled"])
    def test_a_wrong_password_never_reveals_the_status(self, http, partner, clock, status):
        client_with_user(http, partner, clock, status, "user@client.test")
        response = sign_in(http, "user@client.test", "not the password")
        assert response.status_code == 401
        assert WRONG in response.text
        assert "suspended" not in response.text
        assert "trial" not in response.text.lower().replace("trial</title>", "")

    def test_an_unknown_email_gets_the_same_answer_as_a_wrong_password(self, http):
        response = sign_in(http, "nobody@client.test", "whatever it is")
        assert response.status_code == 401
        assert WRONG in response.text

    def test_a_client_user_signs_in_with_exactly_the_address_they_were_created_with(self, http, partner):
        """The API stores an address lower-cased by pydantic (newer Unicode tables than Python's
        `str.lower`); the sign-in form must lower-case it the same way. U+A7CB (Unicode 16)
        lower-cases to U+0264 only in pydantic's tables."""
        client_id = new_client(http, partner)
        add_user(http, partner, client_id, "r\ua7cbmshorn@client.test", role="admin")
        answer = sign_in(http, "r\ua7cbmshorn@client.test", PASSWORD)
        assert (answer.status_code, answer.headers.get("location")) == (303, "/app")
        assert http.get("/api/1/me").json()["user"]["email"] == "r\u0264mshorn@client.test"

    def test_sign_in_keeps_last_sign_in_on_the_user_and_the_client(self, http, partner, clock):
        client_id, _user, _ = client_with_user(http, partner, clock, "trial", "user@client.test")
        sign_in(http, "user@client.test", PASSWORD)
        http.cookies.clear()
        client = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        [listed] = http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()["items"]
        expected = clock.now().isoformat().replace("+00:00", "Z")
        assert client["last_sign_in"] == listed["last_sign_in"] == expected

    def test_the_user_whose_password_matches_signs_in_when_clients_share_an_email(self, http, partner, clock):
        first = new_client(http, partner, "trial")
        second = new_client(http, partner, "trial")
        add_user(http, partner, first, "shared@client.test", password="first password")
        add_user(http, partner, second, "shared@client.test", password="second password")
        assert sign_in(http, "shared@client.test", "second password").status_code == 303
        me = http.get("/api/1/me").json()
        assert me["client"]["id"] == second

    def test_disabling_a_client_ends_its_sessions_at_the_next_request(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "active", "user@client.test")
        sign_in(http, "user@client.test", PASSWORD)
        assert http.get("/app").status_code == 200
        assert http.get("/api/1/me").status_code == 200
        cookies = dict(http.cookies)
        http.cookies.clear()
        set_status(http, partner, client_id, "disabled")
        http.cookies.update(cookies)
        refused = http.get("/api/1/me")
        assert (refused.status_code, refused.json()["code"]) == (403, "account_suspended")
        page = http.get("/app", follow_redirects=False)
        assert page.status_code == 403
        assert SUSPENDED in page.text
        set_status_again = http.get("/app", follow_redirects=False)
        assert set_status_again.headers["location"] == "/login"

    def test_the_portal_shows_the_trial_days_left(self, http, partner, clock):
        client_with_user(http, partner, clock, "trial", "user@client.test")
        clock.advance(timedelta(days=4))
        sign_in(http, "user@client.test", PASSWORD)
        page = http.get("/app")
        assert "Client trial" in page.text
        assert "Trial: 10 days left." in page.text


@pytest.fixture
def argon2_checks(monkeypatch):  # type: ignore[no-untyped-def]
    """How many argon2 verifications the app ran (the real ones, only counted on the way)."""
    done: list[int] = []
    real = secrets._passwords.verify

    def counted(password, hashed):  # type: ignore[no-untyped-def]
        done.append(1)
        return real(password, hashed)

    monkeypatch.setattr(secrets._passwords, "verify", counted)
    return done


class TestTiming:
    """A sign-in checks as many password hashes whichever e-mail it names, so its timing never
    tells which e-mails have accounts. Counted, not timed: each check is one argon2 verification."""

    @pytest.mark.parametrize("kind", ["client user", "partner user"])
    def test_an_invited_users_email_costs_the_same_password_check_as_an_unknown_one(
        self, http, partner, argon2_checks, kind
    ):
        body = {"email": "invited@agency.test", "name": "Ivy", "role": "admin"}  # no password yet
        if kind == "client user":
            added = http.post(
                f"/api/1/clients/{new_client(http, partner)}/users", json=body, headers=partner.headers
            )
        else:
            added = http.post("/api/1/partner/users", json=body, headers=partner.headers)
        assert (added.status_code, added.json()["password_set"]) == (201, False)
        checks = []
        for email in ("nobody@agency.test", "invited@agency.test"):
            argon2_checks.clear()
            answer = sign_in(http, email, "some password 1")
            checks.append((answer.status_code, len(argon2_checks)))
        assert checks == [(401, 1), (401, 1)]


class TestThrottle:
    def test_five_failures_lock_the_account_for_fifteen_minutes(self, http, partner, clock):
        client_with_user(http, partner, clock, "trial", "user@client.test")
        for _ in range(5):
            assert sign_in(http, "user@client.test", "wrong password").status_code == 401
        locked = sign_in(http, "user@client.test", PASSWORD)
        assert locked.status_code == 429
        assert "Too many sign-in attempts. Try again in 15 minutes." in locked.text
        clock.advance(timedelta(minutes=14, seconds=1))
        assert "Try again in 1 minute." in sign_in(http, "user@client.test", PASSWORD).text
        clock.advance(timedelta(minutes=1))
        assert sign_in(http, "user@client.test", PASSWORD).status_code == 303

    def test_twenty_failures_from_one_address_lock_every_account_from_it(self, http, partner, clock):
        client_with_user(http, partner, clock, "trial", "user@client.test")
        for n in range(20):
            assert sign_in(http, f"guess{n}@client.test", "wrong password").status_code == 401
        assert sign_in(http, "user@client.test", PASSWORD).status_code == 429

    def test_a_success_clears_the_accounts_failures(self, http, partner, clock):
        client_with_user(http, partner, clock, "trial", "user@client.test")
        for _ in range(4):
            sign_in(http, "user@client.test", "wrong password")
        assert sign_in(http, "user@client.test", PASSWORD).status_code == 303
        http.cookies.clear()
        for _ in range(4):
            sign_in(http, "user@client.test", "wrong password")
        assert sign_in(http, "user@client.test", PASSWORD).status_code == 303


class TestSessionOnTheApi:
    def test_a_session_creates_the_first_key_with_the_csrf_header_only(self, http, partner, clock):
        sign_in_status = client_with_user(http, partner, clock, "trial", "user@client.test")
        assert sign_in_status
        sign_in(http, "user@client.test", PASSWORD)
        page = http.get("/app")
        assert http.post("/api/1/me/api-keys", json={"name": "k"}).status_code == 403
        created = http.post(
            "/api/1/me/api-keys", json={"name": "k"}, headers={"X-CSRF-Token": csrf_of(page.text)}
        )
        assert created.status_code == 201
        http.cookies.clear()
        me = http.get("/api/1/me", headers={"Authorization": f"Bearer {created.json()['secret']}"})
        assert me.json()["user"]["email"] == "user@client.test"


def test_the_stylesheet_is_served_locally(http):
    response = http.get("/static/tenantry.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")


def test_the_openapi_document_lists_the_user_and_key_endpoints(http):
    paths = http.get("/api/1/openapi.json").json()["paths"]
    for path in (
        "/api/1/clients/{client_id}/users",
        "/api/1/partner/users",
        "/api/1/me",
        "/api/1/me/api-keys",
    ):
        assert path in paths
    assert "/login" not in paths


def test_the_session_cookie_is_secure_when_the_site_is_served_over_https(
    settings, clock, database, partner, db
):
    from fastapi.testclient import TestClient

    from tenantry.app import create_app

    email = admin_email(db, partner)
    db.rollback()
    app = create_app(
        settings.model_copy(update={"base_url": "https://dash.example.test"}), clock=clock, database=database
    )
    with TestClient(app, base_url="https://testserver") as http:
        response = sign_in(http, email, ADMIN_PASSWORD)
        assert response.status_code == 303
        assert "Secure" in response.headers["set-cookie"]

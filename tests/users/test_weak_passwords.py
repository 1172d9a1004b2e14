"""A weak password is refused wherever one is chosen (SPEC §12 "Passwords"): `422 weak_password`
with the reason in words, and nothing changes."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tenantry.auth.secrets import hash_token
from tenantry.db.access_models import Invitation
from tenantry.db.models import Partner
from tests.factories import csrf_of, new_client, post_form

TOO_SHORT = "The password needs at least 10 characters."
BLANK = "The password cannot be made only of spaces or other blank characters."
IS_EMAIL = "The password cannot be the e-mail address."
COMMON = "This password is one of the most common passwords; choose another one."
WEAK = [
    ("12345678", "too_short", TOO_SHORT),
    (" " * 8, "too_short", TOO_SHORT),
    (" " * 12, "blank", BLANK),
    ("qwertyuiop", "common", COMMON),
    ("Password1234", "common", COMMON),
    ("Ann@Client.test", "email", IS_EMAIL),
]


def assert_weak(response, reason: str, detail: str) -> None:
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (body["code"], body["reason"], body["detail"], body["field"]) == (
        "weak_password",
        reason,
        detail,
        "password",
    )


class TestTheApi:
    @pytest.mark.parametrize(("password", "reason", "detail"), WEAK)
    def test_a_client_user_with_a_weak_password_is_refused_and_not_added(
        self, http, partner, password, reason, detail
    ):
        client_id = new_client(http, partner, "trial")
        body = {"email": "ann@client.test", "name": "Ann", "password": password}
        assert_weak(
            http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers), reason, detail
        )
        assert http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()["total"] == 0
        assert http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]["users"] == 0

    @pytest.mark.parametrize(("password", "reason", "detail"), WEAK)
    def test_a_partner_user_with_a_weak_password_is_refused_and_not_added(
        self, http, partner, password, reason, detail
    ):
        body = {"email": "ann@client.test", "name": "Ann", "role": "editor", "password": password}
        assert_weak(http.post("/api/1/partner/users", json=body, headers=partner.headers), reason, detail)
        assert http.get("/api/1/partner/users", headers=partner.headers).json()["total"] == 1

    def test_a_published_link_with_a_weak_password_is_refused_and_takes_nothing(self, http, partner):
        from tests.content import dashboard_in

        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        body = {"name": "Board room", "password": "12345678"}
        refused = http.post(
            f"/api/1/dashboards/{dashboard_id}/published-links", json=body, headers=partner.headers
        )
        assert_weak(refused, "too_short", TOO_SHORT)
        usage = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]
        assert usage["published_links"] == 0
        # A link has no e-mail: any strong password will do, even one that looks like an address.
        body["password"] = "board@room.test"
        assert (
            http.post(
                f"/api/1/dashboards/{dashboard_id}/published-links", json=body, headers=partner.headers
            ).status_code
            == 201
        )

    def test_a_strong_password_is_still_accepted(self, http, partner):
        client_id = new_client(http, partner, "trial")
        body = {"email": "ann@client.test", "name": "Ann", "password": "a long secret 1"}
        assert (
            http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers).status_code
            == 201
        )


class TestTheInvitationPage:
    def invitation(self, http, partner, database, clock) -> tuple[int, str]:
        """A client user added without a password, and an open invitation for them."""
        client_id = new_client(http, partner, "trial")
        body = {"email": "ann@client.test", "name": "Ann"}
        user = http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers).json()
        token = secrets.token_urlsafe(32)
        with database.session(write=True) as session:
            session.add(
                Invitation(
                    token_hash=hash_token(token),
                    partner_id=partner.id,
                    client_user_id=user["id"],
                    created_at=clock.now(),
                    expires_at=clock.now() + timedelta(days=7),
                )
            )
            session.commit()
        return client_id, f"/invite/{token}"

    @pytest.mark.parametrize(("password", "reason", "detail"), WEAK)
    def test_a_weak_password_is_refused_on_the_page_with_its_reason(
        self, http, partner, database, clock, password, reason, detail
    ):
        client_id, path = self.invitation(http, partner, database, clock)
        form = {"password": password, "confirm": password, "csrf_token": csrf_of(http.get(path).text)}
        refused = http.post(path, data=form)
        assert refused.status_code == 422
        assert detail in refused.text
        assert 'name="password"' in refused.text  # the form, to try again
        [user] = http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()["items"]
        assert user["password_set"] is False
        form.update(password="a long secret 2", confirm="a long secret 2")
        assert "Your password is set" in http.post(path, data=form).text


class TestTheConsole:
    @pytest.mark.usefixtures("partner_session")
    def test_the_user_form_shows_the_reason_and_adds_no_one(self, http, partner):
        client_id = new_client(http, partner, "trial")
        base = f"/partner/clients/{client_id}"
        post_form(
            http,
            f"{base}/users",
            base,
            email="ann@client.test",
            name="Ann",
            role="member",
            password="qwertyuiop",
        )
        assert COMMON in http.get(base).text
        assert http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()["total"] == 0


class TestTheCommandLine:
    TENANTRY = str(Path(sys.executable).parent / "tenantry")

    @pytest.mark.parametrize(
        ("password", "detail"),
        [("12345678", TOO_SHORT), ("qwertyuiop", COMMON), ("boss@acme.test", IS_EMAIL)],
    )
    def test_partner_create_refuses_a_weak_admin_password_and_creates_nothing(
        self, database_url, database, db, tmp_path, password, detail
    ):
        result = subprocess.run(
            [
                self.TENANTRY,
                "partner",
                "create",
                "Acme",
                "--admin-email",
                "boss@acme.test",
                "--admin-password",
                password,
            ],
            env={**os.environ, "TENANTRY_DATABASE_URL": database_url},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2
        assert result.stderr == f"error: {detail}\n"
        assert result.stdout == ""
        assert db.scalar(select(func.count()).select_from(Partner)) == 0

    def test_partner_create_takes_a_strong_admin_password(self, database_url, database, tmp_path):
        result = subprocess.run(
            [
                self.TENANTRY,
                "partner",
                "create",
                "Acme",
                "--admin-email",
                "boss@acme.test",
                "--admin-password",
                "a long secret 3",
            ],
            env={**os.environ, "TENANTRY_DATABASE_URL": database_url},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert "admin_password" not in json.loads(result.stdout)

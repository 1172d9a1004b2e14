"""The TOTP second factor (SPEC §18): turning it on and off, the code step of signing in, recovery
codes, and a partner that requires it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.db.account_models import RecoveryCode, TotpFactor
from tests.accounts.conftest import form_csrf
from tests.factories import ADMIN_PASSWORD, PASSWORD, add_user, admin_email, key_for, new_client, sign_in

TOTP = "/api/1/me/mfa/totp"


def _turn_on(http: TestClient, headers: dict[str, str], clock: Any) -> tuple[pyotp.TOTP, list[str]]:
    begun = http.post(TOTP, headers=headers)
    assert begun.status_code == 201, begun.text
    totp = pyotp.TOTP(begun.json()["secret"])
    confirmed = http.post(f"{TOTP}/confirm", json={"code": totp.at(clock.now())}, headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    return totp, confirmed.json()["recovery_codes"]


def _code_step(http: TestClient, code: str) -> Any:
    page = http.get("/login/code")
    assert page.status_code == 200
    csrf = form_csrf(page.text)
    assert csrf is not None
    return http.post("/login/code", data={"code": code, "csrf_token": csrf}, follow_redirects=False)


@pytest.fixture
def admin(http, partner, db) -> str:  # type: ignore[no-untyped-def]
    email = admin_email(db, partner)
    db.rollback()
    return email


class TestTurningOn:
    def test_begin_answers_a_secret_and_its_otpauth_uri(self, http, partner):
        answer = http.post(TOTP, headers=partner.headers)
        assert answer.status_code == 201
        body = answer.json()
        assert body["otpauth_uri"].startswith("otpauth://totp/")
        assert f"secret={body['secret']}" in body["otpauth_uri"]

    def test_the_secret_is_stored_sealed(self, http, partner, db):
        secret = http.post(TOTP, headers=partner.headers).json()["secret"]
        db.rollback()
        sealed = db.scalars(select(TotpFactor.secret_sealed)).one()
        assert secret not in sealed

    def test_a_right_code_turns_it_on_with_ten_recovery_codes_stored_hashed(self, http, partner, clock, db):
        _, codes = _turn_on(http, partner.headers, clock)
        assert len(set(codes)) == 10
        db.rollback()
        stored = db.scalars(select(RecoveryCode.code_hash)).all()
        assert len(stored) == 10
        assert not set(codes) & set(stored)

    def test_a_wrong_code_leaves_it_off(self, http, partner, db):
        http.post(TOTP, headers=partner.headers)
        answer = http.post(f"{TOTP}/confirm", json={"code": "000000"}, headers=partner.headers)
        assert answer.status_code == 403
        assert answer.json()["field"] == "code"
        db.rollback()
        assert db.scalars(select(TotpFactor.confirmed_at)).one() is None

    def test_beginning_again_once_on_is_a_409(self, http, partner, clock):
        _turn_on(http, partner.headers, clock)
        answer = http.post(TOTP, headers=partner.headers)
        assert answer.status_code == 409
        assert answer.json()["code"] == "mfa_state"

    def test_confirming_without_beginning_is_a_409(self, http, partner):
        assert (
            http.post(f"{TOTP}/confirm", json={"code": "123456"}, headers=partner.headers).status_code == 409
        )

    @pytest.mark.parametrize("body", [{}, {"code": ""}, {"code": 123456}, {"code": "1" * 65}])
    def test_a_malformed_code_is_a_422(self, http, partner, body):
        http.post(TOTP, headers=partner.headers)
        assert http.post(f"{TOTP}/confirm", json=body, headers=partner.headers).status_code == 422

    @pytest.mark.parametrize(
        "code", ["\u0661\u0662\u0663\u0664\u0665\u0666", "\u00b9\u00b2\u00b3\u2074\u2075\u2076"]
    )
    def test_digits_of_another_script_are_a_wrong_code_not_a_500(self, http, partner, clock, code):
        # Arabic-Indic digits and superscripts are digits to str.isdigit(), not to a TOTP.
        assert http.post(TOTP, headers=partner.headers).status_code == 201
        assert http.post(f"{TOTP}/confirm", json={"code": code}, headers=partner.headers).status_code == 403
        _turn_on(http, partner.headers, clock)
        assert http.request("DELETE", TOTP, json={"code": code}, headers=partner.headers).status_code == 403

    def test_a_client_users_key_has_its_own_factor(self, http, partner, clock, db):
        client_id = new_client(http, partner)
        user = add_user(http, partner, client_id, "ann@client.test", role="member")
        headers = key_for(http, partner, client_id, user["id"])
        _turn_on(http, headers, clock)
        db.rollback()
        assert db.scalars(select(TotpFactor.client_user_id)).one() == user["id"]


class TestSigningIn:
    def test_the_password_alone_no_longer_signs_in(self, http, partner, clock, admin):
        _turn_on(http, partner.headers, clock)
        answer = sign_in(http, admin, ADMIN_PASSWORD)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login/code"
        assert "tenantry_session" not in answer.cookies
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"

    def test_the_right_code_signs_in(self, http, partner, clock, admin):
        totp, _ = _turn_on(http, partner.headers, clock)
        clock.advance(timedelta(seconds=30))
        sign_in(http, admin, ADMIN_PASSWORD)
        answer = _code_step(http, totp.at(clock.now()))
        assert answer.status_code == 303
        assert answer.headers["location"] == "/partner"
        assert http.get("/partner", follow_redirects=False).status_code == 200

    def test_a_code_used_once_does_not_sign_in_again(self, http, app, partner, clock, admin):
        totp, _ = _turn_on(http, partner.headers, clock)
        clock.advance(timedelta(seconds=30))
        code = totp.at(clock.now())
        sign_in(http, admin, ADMIN_PASSWORD)
        assert _code_step(http, code).status_code == 303
        with TestClient(app) as second:
            sign_in(second, admin, ADMIN_PASSWORD)
            assert _code_step(second, code).status_code == 401

    def test_wrong_codes_are_refused_and_counted_by_the_sign_in_throttle(self, http, partner, clock, admin):
        totp, _ = _turn_on(http, partner.headers, clock)
        clock.advance(timedelta(seconds=30))
        sign_in(http, admin, ADMIN_PASSWORD)
        answers = [_code_step(http, "000000").status_code for _ in range(5)]
        assert answers == [401] * 5
        refused = _code_step(http, totp.at(clock.now()))
        assert refused.status_code == 429
        assert "Retry-After" in refused.headers
        assert sign_in(http, admin, ADMIN_PASSWORD).status_code == 429

    def test_giving_the_password_again_does_not_forgive_the_wrong_codes_of_the_pair(
        self, http, partner, clock, admin
    ):
        """SPEC §12: 5 failures per (e-mail, address) lock that pair. Someone who holds the password
        but not the phone must not wipe the count of wrong codes by giving the password again:
        proving the first factor is not a sign-in."""
        totp, _ = _turn_on(http, partner.headers, clock)
        clock.advance(timedelta(seconds=30))
        assert sign_in(http, admin, ADMIN_PASSWORD).headers["location"] == "/login/code"
        assert [_code_step(http, "000000").status_code for _ in range(4)] == [401] * 4
        assert sign_in(http, admin, ADMIN_PASSWORD).headers["location"] == "/login/code"
        # The fifth wrong code of the pair locks it: even the right code and the password are refused.
        assert _code_step(http, "000000").status_code == 401
        refused = _code_step(http, totp.at(clock.now()))
        assert (refused.status_code, "Retry-After" in refused.headers) == (429, True)
        assert sign_in(http, admin, ADMIN_PASSWORD).status_code == 429
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"

    def test_a_sign_in_completed_with_the_right_code_forgives_the_pairs_wrong_codes(
        self, http, app, partner, clock, admin
    ):
        totp, _ = _turn_on(http, partner.headers, clock)
        clock.advance(timedelta(seconds=30))
        sign_in(http, admin, ADMIN_PASSWORD)
        assert [_code_step(http, "000000").status_code for _ in range(4)] == [401] * 4
        assert _code_step(http, totp.at(clock.now())).headers["location"] == "/partner"
        clock.advance(timedelta(seconds=30))
        with TestClient(app) as second:  # another browser at the same address: the same pair
            assert sign_in(second, admin, ADMIN_PASSWORD).headers["location"] == "/login/code"
            # Counted afresh: five more wrong codes are refused as wrong, and then the pair is locked.
            assert [_code_step(second, "000000").status_code for _ in range(5)] == [401] * 5
            assert _code_step(second, totp.at(clock.now())).status_code == 429

    def test_a_code_of_superscript_digits_is_a_wrong_code_counted_not_a_500(
        self, http, partner, clock, admin
    ):
        _turn_on(http, partner.headers, clock)
        sign_in(http, admin, ADMIN_PASSWORD)
        assert _code_step(http, "\u00b9\u00b2\u00b3\u2074\u2075\u2076").status_code == 401

    def test_a_recovery_code_signs_in_once(self, http, app, partner, clock, admin):
        _, codes = _turn_on(http, partner.headers, clock)
        sign_in(http, admin, ADMIN_PASSWORD)
        assert _code_step(http, codes[0].upper()).status_code == 303
        with TestClient(app) as second:
            sign_in(second, admin, ADMIN_PASSWORD)
            assert _code_step(second, codes[0]).status_code == 401
            assert _code_step(second, codes[1]).status_code == 303

    def test_the_code_step_expires(self, http, partner, clock, admin):
        totp, _ = _turn_on(http, partner.headers, clock)
        sign_in(http, admin, ADMIN_PASSWORD)
        clock.advance(timedelta(minutes=6))
        csrf = form_csrf(http.get("/login").text)
        answer = http.post(
            "/login/code",
            data={"code": totp.at(clock.now()), "csrf_token": csrf or ""},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/login"
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"

    def test_a_forged_pending_cookie_opens_nothing(self, http, partner, clock):
        _turn_on(http, partner.headers, clock)
        http.cookies.set(
            "tenantry_pending", f"code:partner_user:{partner.admin_user_id}:99999999999:00.forged"
        )
        assert http.get("/login/code", follow_redirects=False).headers["location"] == "/login"

    def test_a_client_user_with_totp_gives_a_code_too(self, http, partner, clock):
        client_id = new_client(http, partner)
        user = add_user(http, partner, client_id, "ann@client.test", role="member")
        totp, _ = _turn_on(http, key_for(http, partner, client_id, user["id"]), clock)
        clock.advance(timedelta(seconds=30))
        assert sign_in(http, "ann@client.test", PASSWORD).headers["location"] == "/login/code"
        answer = _code_step(http, totp.at(clock.now()))
        assert answer.headers["location"] == "/app"


class TestTurningOff:
    def test_a_wrong_code_keeps_it_on_and_is_counted(self, http, partner, clock, admin, db):
        _turn_on(http, partner.headers, clock)
        answers = [
            http.request("DELETE", TOTP, json={"code": "000000"}, headers=partner.headers).status_code
            for _ in range(6)
        ]
        assert answers == [403] * 5 + [429]
        db.rollback()
        assert db.scalars(select(TotpFactor.confirmed_at)).one() is not None

    def test_a_right_code_turns_it_off_and_the_password_signs_in_again(self, http, partner, clock, admin):
        totp, _ = _turn_on(http, partner.headers, clock)
        clock.advance(timedelta(seconds=30))
        answer = http.request("DELETE", TOTP, json={"code": totp.at(clock.now())}, headers=partner.headers)
        assert answer.status_code == 204
        assert sign_in(http, admin, ADMIN_PASSWORD).headers["location"] == "/partner"


class TestRequiredByThePartner:
    def test_only_an_admin_may_require_it(self, http, partner, add_partner_user):
        editor = add_partner_user(partner, "editor")
        assert http.patch("/api/1/partner", json={"require_mfa": True}, headers=editor).status_code == 403
        assert http.get("/api/1/partner", headers=partner.headers).json()["require_mfa"] is False
        answer = http.patch("/api/1/partner", json={"require_mfa": True}, headers=partner.headers)
        assert answer.status_code == 200
        assert answer.json()["require_mfa"] is True

    def test_a_partner_user_without_totp_is_sent_to_enrol_before_anything_else(
        self, http, partner, clock, admin
    ):
        http.patch("/api/1/partner", json={"require_mfa": True}, headers=partner.headers)
        answer = sign_in(http, admin, ADMIN_PASSWORD)
        assert answer.headers["location"] == "/login/enrol"
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"
        page = http.get("/login/enrol")
        assert page.status_code == 200
        assert "<svg" in page.text
        secret = page.text.split('id="totp-secret" type="text" readonly size="40" value="')[1].split('"')[0]
        assert http.get("/login/enrol").text.count(secret) >= 1  # a reload shows the same key
        wrong = http.post("/login/enrol", data={"code": "000000", "csrf_token": form_csrf(page.text) or ""})
        assert wrong.status_code == 401
        code = pyotp.TOTP(secret).at(clock.now())
        done = http.post("/login/enrol", data={"code": code, "csrf_token": form_csrf(page.text) or ""})
        assert done.status_code == 200
        assert done.text.count("<code>") == 10
        assert http.get("/partner", follow_redirects=False).status_code == 200

    def test_once_required_it_cannot_be_turned_off(self, http, partner, clock):
        totp, _ = _turn_on(http, partner.headers, clock)
        http.patch("/api/1/partner", json={"require_mfa": True}, headers=partner.headers)
        clock.advance(timedelta(seconds=30))
        answer = http.request("DELETE", TOTP, json={"code": totp.at(clock.now())}, headers=partner.headers)
        assert answer.status_code == 409

    def test_client_users_are_not_asked_to_enrol(self, http, partner):
        http.patch("/api/1/partner", json={"require_mfa": True}, headers=partner.headers)
        client_id = new_client(http, partner)
        add_user(http, partner, client_id, "ann@client.test", role="member")
        assert sign_in(http, "ann@client.test", PASSWORD).headers["location"] == "/app"


class TestAccountPage:
    def test_the_account_page_sets_it_up_with_an_inline_qr_code(self, http, partner, clock, admin):
        assert sign_in(http, admin, ADMIN_PASSWORD).status_code == 303
        home = http.get("/partner")
        assert "Two-step sign-in is <strong>off</strong>" in home.text
        csrf = form_csrf(home.text) or ""
        setup = http.post("/account/mfa", data={"csrf_token": csrf})
        assert setup.status_code == 200
        assert "<svg" in setup.text and "<img" not in setup.text
        secret = setup.text.split('id="totp-secret" type="text" readonly size="40" value="')[1].split('"')[0]
        confirmed = http.post(
            "/account/mfa/confirm", data={"csrf_token": csrf, "code": pyotp.TOTP(secret).at(clock.now())}
        )
        assert confirmed.status_code == 200
        assert confirmed.text.count("<code>") == 10
        assert "Two-step sign-in is <strong>on</strong>" in http.get("/partner").text

    def test_the_require_switch_is_on_the_admins_account_page(self, http, partner, admin):
        assert sign_in(http, admin, ADMIN_PASSWORD).status_code == 303
        csrf = form_csrf(http.get("/partner").text) or ""
        http.post("/partner/require-mfa", data={"csrf_token": csrf, "require": "on"})
        assert http.get("/api/1/partner", headers=partner.headers).json()["require_mfa"] is True


class TestKeyRotation:
    def test_rotating_the_encryption_key_reseals_totp_secrets(self, partner, database, clock):
        import os

        from tenantry.accounts.service import rotate_totp_secrets
        from tenantry.auth import mfa
        from tenantry.db.models import PartnerUser
        from tenantry.vault import Vault

        old, new = os.urandom(32), os.urandom(32)
        with database.session(write=True) as db:
            user = db.get(PartnerUser, partner.admin_user_id)
            secret = mfa.begin(db, Vault(old), user, clock.now())
            db.commit()
        with database.session(write=True) as db:
            outcome = rotate_totp_secrets(db, Vault(new, [old]))
            db.commit()
        assert (outcome.rotated, outcome.current, outcome.unreadable) == (1, 0, [])
        with database.session() as db:
            factor = db.scalars(select(TotpFactor)).one()
            assert Vault(new).open(factor.secret_sealed) == secret

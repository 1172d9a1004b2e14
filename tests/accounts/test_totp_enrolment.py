"""Setting TOTP up on the web pages (SPEC §18): the page for a long non-ASCII address (SPEC §12:
no Unicode input makes a page answer 500), and the enrol page of a sign-in the partner requires
TOTP for, which shows and confirms only a secret begun by that sign-in."""

from __future__ import annotations

import re
from typing import Any

import pyotp
import segno
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.accounts.service import SHORT_ACCOUNT_CHARS
from tenantry.db.account_models import TotpFactor
from tenantry.web.recovery import NO_QR
from tests.accounts.conftest import form_csrf
from tests.factories import ADMIN_PASSWORD, PASSWORD, admin_email, sign_in

TOTP = "/api/1/me/mfa/totp"
# 230 characters of four bytes each: an address the API accepts, whose otpauth URI (each
# character written as 12 bytes) no QR code can hold.
LONG_EMAIL = "\U0001f600" * 230 + "@example.test"
LONG_PRODUCT_NAME = "\U0001f600" * 100


def _shown_secret(page_text: str) -> str:
    found = re.search(r'id="totp-secret" type="text" readonly size="40" value="([A-Z2-7]+)"', page_text)
    assert found is not None, page_text[:500]
    return found.group(1)


def _qr_of(uri: str) -> str:
    """The SVG the pages draw for `uri` (the same drawing settings)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#000", light="#fff")


def _short_uri(secret: str, email: str, issuer: str = "Tenantry") -> str:
    name = email[:SHORT_ACCOUNT_CHARS] + "…"
    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=issuer)


def _long_address_user(http: TestClient, partner: Any) -> None:
    body = {"email": LONG_EMAIL, "name": "Smiley", "role": "editor", "password": PASSWORD}
    answer = http.post("/api/1/partner/users", json=body, headers=partner.headers)
    assert answer.status_code == 201, answer.text


def _require_totp(http: TestClient, partner: Any) -> None:
    answer = http.patch("/api/1/partner", json={"require_mfa": True}, headers=partner.headers)
    assert answer.status_code == 200, answer.text


def _enrol(http: TestClient, page_text: str, code: str) -> Any:
    return http.post("/login/enrol", data={"code": code, "csrf_token": form_csrf(page_text) or ""})


def _account_page_setup(http: TestClient) -> Any:
    csrf = form_csrf(http.get("/partner").text) or ""
    return http.post("/account/mfa", data={"csrf_token": csrf})


class TestSettingUpWithALongUnicodeAddress:
    def test_the_account_page_draws_the_qr_code_with_the_account_name_cut_short(self, http, partner, clock):
        _long_address_user(http, partner)
        assert sign_in(http, LONG_EMAIL, PASSWORD).status_code == 303
        setup = _account_page_setup(http)
        assert setup.status_code == 200, setup.text[:300]
        secret = _shown_secret(setup.text)
        assert _qr_of(_short_uri(secret, LONG_EMAIL)).split(">", 1)[1] in setup.text
        csrf = form_csrf(setup.text) or ""
        code = pyotp.TOTP(secret).at(clock.now())
        confirmed = http.post("/account/mfa/confirm", data={"csrf_token": csrf, "code": code})
        assert confirmed.status_code == 200
        assert confirmed.text.count("<code>") == 10

    def test_the_enrol_page_at_sign_in_draws_the_qr_code_and_signs_in(self, http, partner, clock):
        _long_address_user(http, partner)
        _require_totp(http, partner)
        assert sign_in(http, LONG_EMAIL, PASSWORD).headers["location"] == "/login/enrol"
        page = http.get("/login/enrol")
        assert page.status_code == 200, page.text[:300]
        secret = _shown_secret(page.text)
        assert _qr_of(_short_uri(secret, LONG_EMAIL)).split(">", 1)[1] in page.text
        done = _enrol(http, page.text, pyotp.TOTP(secret).at(clock.now()))
        assert done.status_code == 200
        assert http.get("/partner", follow_redirects=False).status_code == 200

    def test_when_even_the_short_uri_overflows_both_pages_show_the_key_to_type_without_a_qr_code(
        self, http, partner, clock
    ):
        _long_address_user(http, partner)
        branded = http.patch(
            "/api/1/partner/branding", json={"product_name": LONG_PRODUCT_NAME}, headers=partner.headers
        )
        assert branded.status_code == 200, branded.text
        assert sign_in(http, LONG_EMAIL, PASSWORD).status_code == 303
        setup = _account_page_setup(http)
        assert setup.status_code == 200, setup.text[:300]
        assert "<svg" not in setup.text and NO_QR in setup.text
        _shown_secret(setup.text)
        http.cookies.clear()

        _require_totp(http, partner)
        assert sign_in(http, LONG_EMAIL, PASSWORD).headers["location"] == "/login/enrol"
        page = http.get("/login/enrol")
        assert page.status_code == 200, page.text[:300]
        assert "<svg" not in page.text and NO_QR in page.text
        done = _enrol(http, page.text, pyotp.TOTP(_shown_secret(page.text)).at(clock.now()))
        assert done.status_code == 200
        assert done.text.count("<code>") == 10


class TestEnrollingAtSignInWithASecretBegunElsewhere:
    def _admin(self, db: Any, partner: Any) -> str:
        email = admin_email(db, partner)
        db.rollback()
        return email

    def test_a_secret_begun_through_the_api_before_the_sign_in_is_neither_shown_nor_confirmed(
        self, http, partner, clock, db
    ):
        admin = self._admin(db, partner)
        planted = http.post(TOTP, headers=partner.headers).json()["secret"]
        _require_totp(http, partner)
        assert sign_in(http, admin, ADMIN_PASSWORD).headers["location"] == "/login/enrol"
        page = http.get("/login/enrol")
        assert page.status_code == 200
        assert planted not in page.text
        refused = _enrol(http, page.text, pyotp.TOTP(planted).at(clock.now()))
        assert refused.status_code == 401
        assert planted not in refused.text
        db.rollback()
        factor = db.scalars(
            select(TotpFactor).where(TotpFactor.partner_user_id == partner.admin_user_id)
        ).one()
        assert factor.confirmed_at is None
        assert http.get("/partner", follow_redirects=False).headers["location"] == "/login"

    def test_reloading_the_enrol_page_shows_the_same_secret_which_signs_in(self, http, partner, clock, db):
        admin = self._admin(db, partner)
        http.post(TOTP, headers=partner.headers)
        _require_totp(http, partner)
        assert sign_in(http, admin, ADMIN_PASSWORD).headers["location"] == "/login/enrol"
        shown = _shown_secret(http.get("/login/enrol").text)
        page = http.get("/login/enrol")
        assert _shown_secret(page.text) == shown
        wrong = _enrol(http, page.text, "000000")
        assert wrong.status_code == 401
        assert _shown_secret(wrong.text) == shown
        done = _enrol(http, page.text, pyotp.TOTP(shown).at(clock.now()))
        assert done.status_code == 200
        assert done.text.count("<code>") == 10
        assert http.get("/partner", follow_redirects=False).status_code == 200

    def test_a_secret_begun_through_the_api_during_the_sign_in_is_not_confirmed_and_is_replaced(
        self, http, partner, clock, db
    ):
        admin = self._admin(db, partner)
        _require_totp(http, partner)
        assert sign_in(http, admin, ADMIN_PASSWORD).headers["location"] == "/login/enrol"
        page = http.get("/login/enrol")
        shown = _shown_secret(page.text)
        planted = http.post(TOTP, headers=partner.headers).json()["secret"]
        refused = _enrol(http, page.text, pyotp.TOTP(planted).at(clock.now()))
        assert refused.status_code == 401
        again = _shown_secret(refused.text)
        assert again not in (planted, shown)
        assert _shown_secret(http.get("/login/enrol").text) == again
        done = _enrol(http, refused.text, pyotp.TOTP(again).at(clock.now()))
        assert done.status_code == 200

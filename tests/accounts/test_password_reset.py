"""Forgotten passwords (SPEC §18): the request tells nothing, the link works once for an hour, and
it ends the user's sessions without getting around the rules of signing in."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from structlog.testing import capture_logs

from tenantry.accounts.service import RESET_LIFETIME, RESETS_PER_ADDRESS, RESETS_PER_EMAIL
from tenantry.auth import throttle
from tenantry.auth.secrets import verify_password
from tenantry.db.access_models import WebSession
from tenantry.db.account_models import PasswordReset, TotpFactor
from tenantry.db.models import ClientUser, PartnerUser
from tenantry.db.worker_models import OutboxMail
from tests.accounts.conftest import form_csrf, path_of, post_page_form
from tests.factories import (
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_email,
    client_with_user,
    new_client,
    sign_in,
)

NEW_PASSWORD = "a brand new secret 7"
# U+A7CB LATIN CAPITAL LETTER RAMSHORN (Unicode 16): lower case U+0264 in pydantic's tables only.
ODD_ADDRESS = "r\ua7cbmshorn@client.test"
RESET = "/api/1/auth/password-reset"


def _reset(http, link: str, password: str = NEW_PASSWORD, confirm: str | None = None):  # type: ignore[no-untyped-def]
    return post_page_form(
        http, path_of(link), password=password, confirm=password if confirm is None else confirm
    )


def _hash(db, partner) -> str | None:  # type: ignore[no-untyped-def]
    db.rollback()
    return db.get(PartnerUser, partner.admin_user_id).password_hash


class TestAsking:
    def test_a_known_and_an_unknown_address_get_the_same_answer(self, mail_http, partner, db):
        email = admin_email(db, partner)
        known = mail_http.post(RESET, json={"email": email})
        unknown = mail_http.post(RESET, json={"email": "nobody@nowhere.test"})
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        assert set(known.headers) - {"date", "x-request-id"} == set(unknown.headers) - {
            "date",
            "x-request-id",
        }

    def test_only_a_known_address_is_sent_a_link_to_the_operators_address(
        self, mail_http, partner, db, mailed_links, settings
    ):
        mail_http.post(RESET, json={"email": "nobody@nowhere.test"})
        assert mailed_links("reset") == []
        mail_http.post(RESET, json={"email": admin_email(db, partner).upper()})
        [link] = mailed_links("reset")
        assert link.startswith(settings.base_url + "/reset/")
        assert len(link.rsplit("/", 1)[1]) >= 43  # 256 random bits

    def test_the_token_is_stored_only_as_a_hash(self, mail_http, partner, db, mailed_links):
        mail_http.post(RESET, json={"email": admin_email(db, partner)})
        [link] = mailed_links("reset")
        db.rollback()
        stored = db.scalars(select(PasswordReset.token_hash)).all()
        assert len(stored) == 1 and link.rsplit("/", 1)[1] not in stored[0]

    def test_the_message_is_queued_as_a_password_reset_sent_by_the_system(self, mail_http, partner, db):
        mail_http.post(RESET, json={"email": admin_email(db, partner)})
        db.rollback()
        queued = db.execute(select(OutboxMail.kind, OutboxMail.sent_by, OutboxMail.subject)).all()
        assert [(kind, sent_by) for kind, sent_by, _ in queued] == [("password_reset", "system")]
        assert "password" in queued[0].subject.lower()

    def test_the_message_shows_the_partners_logo_from_the_public_address(
        self, mail_http, partner, db, settings
    ):
        from tests.branding.images import png

        put = mail_http.put(
            "/api/1/partner/branding/logo",
            content=png(),
            headers={**partner.headers, "Content-Type": "image/png"},
        )
        assert put.status_code == 200, put.text
        mail_http.post(RESET, json={"email": admin_email(db, partner)})
        db.rollback()
        (html,) = db.scalars(select(OutboxMail.html)).all()
        assert f'src="{settings.base_url.rstrip("/")}{put.json()["logo_url"]}"' in html

    def test_without_a_sender_name_the_message_comes_from_the_partners_product_name(
        self, mail_http, partner, db
    ):
        branded = {"product_name": "Acme Dashboards"}  # and no `email_from_name`
        assert (
            mail_http.patch("/api/1/partner/branding", json=branded, headers=partner.headers).status_code
            == 200
        )
        mail_http.post(RESET, json={"email": admin_email(db, partner)})
        db.rollback()
        assert db.execute(select(OutboxMail.kind, OutboxMail.from_name)).all() == [
            ("password_reset", "Acme Dashboards")
        ]

    def test_a_reset_asked_for_with_exactly_the_address_a_user_was_created_with_is_queued_for_them(
        self, mail_http, partner, db
    ):
        """The API stores an address lower-cased by pydantic (newer Unicode tables than Python's
        `str.lower`); the reset request and form must lower-case it the same way. U+A7CB (Unicode
        16) lower-cases to U+0264 only in pydantic's tables."""
        client_id = new_client(mail_http, partner)
        user = add_user(mail_http, partner, client_id, ODD_ADDRESS, role="admin")
        assert user["email"] == "r\u0264mshorn@client.test"
        assert mail_http.post(RESET, json={"email": ODD_ADDRESS}).status_code == 202
        assert post_page_form(mail_http, "/forgot", email=ODD_ADDRESS).status_code == 200
        db.rollback()
        asked = db.scalars(select(PasswordReset.client_user_id)).all()
        queued = db.scalars(select(OutboxMail.recipients).where(OutboxMail.kind == "password_reset")).all()
        assert (asked, queued) == ([user["id"]] * 2, [[user["email"]]] * 2)

    def test_the_form_on_the_sign_in_page_sends_the_same_sentence_for_any_address(
        self, mail_http, partner, db
    ):
        assert 'href="/forgot"' in mail_http.get("/login").text
        known = post_page_form(mail_http, "/forgot", email=admin_email(db, partner))
        unknown = post_page_form(mail_http, "/forgot", email="nobody@nowhere.test")
        assert known.status_code == unknown.status_code == 200
        assert known.text == unknown.text

    def test_one_address_asking_too_often_is_throttled_for_known_and_unknown_e_mails_alike(
        self, mail_http, partner, db
    ):
        emails = [admin_email(db, partner)] + [f"nobody{n}@nowhere.test" for n in range(RESETS_PER_ADDRESS)]
        answers = [mail_http.post(RESET, json={"email": email}).status_code for email in emails]
        assert answers == [202] * RESETS_PER_ADDRESS + [429]
        for email in (admin_email(db, partner), "nobody@nowhere.test"):
            refused = mail_http.post(RESET, json={"email": email})
            assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
            assert int(refused.headers["retry-after"]) > 0

    def test_an_e_mail_asked_for_too_often_is_sent_no_more_links_and_the_answer_stays_the_same(
        self, mail_http, partner, db, mailed_links
    ):
        known, unknown = admin_email(db, partner), "nobody@nowhere.test"
        for email in (known, unknown):
            answers = [mail_http.post(RESET, json={"email": email}) for _ in range(RESETS_PER_EMAIL + 2)]
            assert [a.status_code for a in answers] == [202] * (RESETS_PER_EMAIL + 2)
            assert len({a.text for a in answers}) == 1
        assert len(mailed_links("reset")) == RESETS_PER_EMAIL

    def test_someone_asking_for_a_persons_address_does_not_hold_back_that_persons_own_request(
        self, mail_http, partner, db, mailed_links, clock
    ):
        email = admin_email(db, partner)
        for _ in range(RESETS_PER_EMAIL):  # someone else, who knows the address
            mail_http.post(RESET, json={"email": email})
        clock.advance(minutes=14)
        # The person's own request is answered as any other, and the links already sent work.
        assert mail_http.post(RESET, json={"email": email}).status_code == 202
        links = mailed_links("reset")
        assert len(links) == RESETS_PER_EMAIL
        assert RESET_LIFETIME > throttle.WINDOW
        assert _reset(mail_http, links[0]).status_code == 200
        assert sign_in(mail_http, email, NEW_PASSWORD).status_code == 303
        # Once the window has passed, the e-mail is sent links again.
        clock.advance(minutes=2)
        mail_http.post(RESET, json={"email": email})
        assert len(mailed_links("reset")) == 1

    @pytest.mark.parametrize("body", [{}, {"email": 5}, {"email": "x" * 300}, {"email": "a@b.c", "more": 1}])
    def test_a_malformed_request_is_a_422_naming_the_field(self, mail_http, body):
        answer = mail_http.post(RESET, json=body)
        assert answer.status_code == 422
        assert answer.headers["content-type"].startswith("application/problem+json")


class TestTheLink:
    @pytest.fixture
    def link(self, mail_http, partner, db, mailed_links):  # type: ignore[no-untyped-def]
        mail_http.post(RESET, json={"email": admin_email(db, partner)})
        [link] = mailed_links("reset")
        return link

    def test_the_link_sets_a_new_password_that_signs_in(self, mail_http, partner, db, link):
        assert mail_http.get(path_of(link)).status_code == 200
        answer = _reset(mail_http, link)
        assert answer.status_code == 200
        assert 'href="/login"' in answer.text
        assert sign_in(mail_http, admin_email(db, partner), ADMIN_PASSWORD).status_code == 401
        assert sign_in(mail_http, admin_email(db, partner), NEW_PASSWORD).status_code == 303

    def test_the_link_works_once(self, mail_http, partner, db, link):
        assert _reset(mail_http, link).status_code == 200
        before = _hash(db, partner)
        again = _reset(mail_http, link, "yet another secret 9")
        assert again.status_code == 404
        assert "not valid" in again.text
        assert _hash(db, partner) == before

    def test_the_link_expires_after_an_hour(self, mail_http, partner, db, link, clock):
        clock.advance(timedelta(hours=1, seconds=1))
        before = _hash(db, partner)
        assert mail_http.get(path_of(link)).status_code == 404
        assert _reset(mail_http, link).status_code == 404
        assert _hash(db, partner) == before

    def test_an_altered_token_opens_nothing(self, mail_http, partner, db, link):
        token = link.rsplit("/", 1)[1]
        altered = link[: -len(token)] + ("A" if token[0] != "A" else "B") + token[1:]
        before = _hash(db, partner)
        assert mail_http.get(path_of(altered)).status_code == 404
        assert _reset(mail_http, altered).status_code == 404
        assert _hash(db, partner) == before

    def test_a_weak_password_is_refused_and_the_link_stays_open(self, mail_http, partner, db, link):
        weak = _reset(mail_http, link, "password123")
        assert weak.status_code == 422
        assert "most common passwords" in weak.text
        assert _reset(mail_http, link, "short").status_code == 422
        mismatch = _reset(mail_http, link, NEW_PASSWORD, NEW_PASSWORD + "x")
        assert mismatch.status_code == 422
        assert verify_password(ADMIN_PASSWORD, _hash(db, partner))
        assert _reset(mail_http, link).status_code == 200

    def test_a_form_without_its_csrf_token_changes_nothing(self, mail_http, partner, db, link):
        mail_http.get(path_of(link))
        answer = mail_http.post(path_of(link), data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert answer.status_code == 403
        assert verify_password(ADMIN_PASSWORD, _hash(db, partner))

    def test_resetting_ends_every_session_of_the_user(self, mail_http, partner, db, link):
        assert sign_in(mail_http, admin_email(db, partner), ADMIN_PASSWORD).status_code == 303
        assert mail_http.get("/partner", follow_redirects=False).status_code == 200
        assert _reset(mail_http, link).status_code == 200
        assert mail_http.get("/partner", follow_redirects=False).headers["location"] == "/login"
        db.rollback()
        assert (
            db.scalars(select(WebSession).where(WebSession.partner_user_id == partner.admin_user_id)).all()
            == []
        )

    def test_resetting_ends_a_sign_in_still_waiting_to_set_up_its_second_factor(
        self, mail_http, partner, db, link, clock
    ):
        """Someone who knew the old password got as far as the partner's required TOTP set-up; once
        the owner resets the password, that half-made sign-in cannot go on to enrol their own
        authenticator and open a session."""
        email = admin_email(db, partner)
        db.rollback()
        required = mail_http.patch("/api/1/partner", json={"require_mfa": True}, headers=partner.headers)
        assert required.status_code == 200
        with TestClient(mail_http.app) as intruder:
            assert sign_in(intruder, email, ADMIN_PASSWORD).headers["location"] == "/login/enrol"
            page = intruder.get("/login/enrol")
            assert page.status_code == 200
            secret = re.search(r'id="totp-secret"[^>]*value="([^"]+)"', page.text)
            assert secret is not None
            assert _reset(mail_http, link).status_code == 200
            assert intruder.get("/login/enrol", follow_redirects=False).headers["location"] == "/login"
            code = pyotp.TOTP(secret[1]).at(clock.now())
            answer = intruder.post(
                "/login/enrol",
                data={"code": code, "csrf_token": form_csrf(page.text) or ""},
                follow_redirects=False,
            )
            assert answer.status_code in (303, 401) and "<code>" not in answer.text
            assert intruder.get("/partner", follow_redirects=False).headers["location"] == "/login"
        db.rollback()
        assert db.scalars(select(TotpFactor).where(TotpFactor.confirmed_at.is_not(None))).all() == []

    def test_a_newer_link_leaves_the_older_one_working_until_one_is_used(
        self, mail_http, partner, db, mailed_links, link
    ):
        mail_http.post(RESET, json={"email": admin_email(db, partner)})
        [newer] = mailed_links("reset")
        assert _reset(mail_http, newer).status_code == 200
        assert _reset(mail_http, link, "yet another secret 9").status_code == 404


class TestDisabledClients:
    def test_a_reset_sets_the_password_but_a_disabled_clients_user_still_cannot_sign_in(
        self, mail_http, partner, clock, db, mailed_links
    ):
        _, user, _ = client_with_user(mail_http, partner, clock, "disabled", "owner@client.test")
        mail_http.post(RESET, json={"email": "owner@client.test"})
        [link] = mailed_links("reset")
        assert _reset(mail_http, link).status_code == 200
        db.rollback()
        assert verify_password(NEW_PASSWORD, db.get(ClientUser, user["id"]).password_hash)
        answer = sign_in(mail_http, "owner@client.test", NEW_PASSWORD)
        assert answer.status_code == 403
        assert "suspended" in answer.text
        assert sign_in(mail_http, "owner@client.test", PASSWORD).status_code == 401

    def test_an_address_with_two_accounts_gets_a_link_for_each(
        self, mail_http, partner, make_partner, clock, mailed_links
    ):
        other = make_partner(users=10, dashboards=10, published_links=10, api_calls_per_day=1000)
        client_with_user(mail_http, partner, clock, "trial", "both@client.test")
        client_with_user(mail_http, other, clock, "active", "both@client.test")
        mail_http.post(RESET, json={"email": "both@client.test"})
        assert len(set(mailed_links("reset"))) == 2


class TestTheLinkIsASecret:
    def test_without_smtp_the_log_shows_the_reset_e_mail_with_its_link_redacted(self, http, partner, db):
        email = admin_email(db, partner)
        with capture_logs() as logs:
            assert http.post(RESET, json={"email": email}).status_code == 202
        (logged,) = [entry for entry in logs if entry["event"].startswith("mail not sent")]
        assert "/reset/[redacted]" in logged["text"]
        assert not re.search(r"/reset/(?!\[redacted\])", repr(logs))


class TestInvitedUsers:
    def test_accepting_the_invitation_closes_the_reset_links_asked_for_before(
        self, mail_http, partner, mailed_links, db
    ):
        """Setting the password through the invitation closes the user's open reset links, as a
        change or a reset does: a link sent for the account as it was must not choose the
        password again afterwards."""
        client_id = new_client(mail_http, partner)
        user = add_user(mail_http, partner, client_id, "invitee@client.test", password=None, role="member")
        [invitation] = mailed_links("invite")
        assert mail_http.post(RESET, json={"email": "invitee@client.test"}).status_code == 202
        [link] = mailed_links("reset")
        chosen = "the password ann chose"
        assert _reset(mail_http, invitation, chosen).status_code == 200
        shown = mail_http.get(path_of(link))
        used = _reset(mail_http, link, "someone elses password")
        db.rollback()
        stored = db.get(ClientUser, user["id"]).password_hash
        open_links = db.scalars(select(PasswordReset.id).where(PasswordReset.used_at.is_(None))).all()
        assert (shown.status_code, used.status_code, open_links) == (404, 404, [])
        assert verify_password(chosen, stored)
        assert sign_in(mail_http, "invitee@client.test", chosen).status_code == 303

    def test_a_reset_closes_the_invitation_that_would_set_the_password_again(
        self, mail_http, partner, mailed_links
    ):
        client_id = new_client(mail_http, partner)
        add_user(mail_http, partner, client_id, "invitee@client.test", password=None, role="member")
        [invitation] = mailed_links("invite")
        mail_http.post(RESET, json={"email": "invitee@client.test"})
        [link] = mailed_links("reset")
        assert _reset(mail_http, link).status_code == 200
        assert mail_http.get(path_of(invitation)).status_code == 404
        assert sign_in(mail_http, "invitee@client.test", NEW_PASSWORD).status_code == 303

"""Security headers (SPEC §12 "Headers"): console, portal, sign-in, invitation and message pages
run no inline code without this response's nonce, cannot be framed, are not sniffed and send a
Referer only to this origin; API answers are not sniffed either. And `GET /` finds everyone's home.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from datetime import timedelta

import pytest

from tenantry.auth.secrets import hash_token
from tenantry.db.access_models import Invitation
from tenantry.web.headers import new_nonce, page_policy, with_security_headers
from tests.factories import (
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_email,
    enter,
    new_client,
    sign_in,
)
from tests.pages import InlineCode, directives


def assert_a_locked_down_page(response) -> InlineCode:
    """The page's headers, and that each inline script or style carries the policy's nonce."""
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = directives(response)
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert policy["default-src"] == "'self'"
    for directive in ("script-src", "style-src"):
        assert "'unsafe-inline'" not in policy[directive] and "*" not in policy[directive]
    nonces = set(re.findall(r"'nonce-([^']+)'", policy["script-src"]))
    page = InlineCode()
    page.feed(response.text)
    for tag, nonce, external in page.elements:
        if not external:
            assert nonce is not None and nonce in nonces, f"an inline <{tag}> without the response's nonce"
    assert page.attributes == []
    return page


class TestPagesAreLockedDown:
    def test_the_sign_in_page(self, http):
        assert_a_locked_down_page(http.get("/login"))

    def test_a_message_page_and_an_invitation_form(self, http, partner, db, clock):
        refused = http.get("/invite/" + "x" * 43)
        assert refused.status_code == 404
        assert_a_locked_down_page(refused)
        client_id = new_client(http, partner, "trial")
        user = add_user(http, partner, client_id, "invited@client.test", password=None)
        token = secrets.token_urlsafe(32)
        db.add(
            Invitation(
                token_hash=hash_token(token),
                partner_id=partner.id,
                client_user_id=user["id"],
                created_at=clock.now(),
                expires_at=clock.now() + timedelta(days=7),
            )
        )
        db.commit()
        form = http.get(f"/invite/{token}")
        assert form.status_code == 200 and 'name="confirm"' in form.text
        assert_a_locked_down_page(form)

    @pytest.mark.parametrize(
        "path",
        [
            "/partner",
            "/partner/clients",
            "/partner/clients/new",
            "/partner/clients/{client}",
            "/partner/plan",
            "/partner/statements",
        ],
    )
    def test_every_console_page(self, http, partner, db, path):
        client_id = new_client(http, partner, "trial")
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        page = http.get(path.format(client=client_id))
        assert page.status_code == 200
        assert_a_locked_down_page(page)

    def test_the_plan_draws_its_bars_with_a_style_block_under_the_nonce(self, http, make_partner, db):
        partner = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=100)
        new_client(http, partner, "trial", dashboards=4)
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        page = http.get("/partner/plan")
        assert_a_locked_down_page(page)
        assert "#bar-dashboards .bar-allocated { width: 40.0%; }" in page.text

    def test_the_portal_and_its_live_dashboard_whose_script_carries_the_nonce(
        self, http, partner, portal_user
    ):
        _, dashboard_id, email = portal_user
        sign_in(http, email, PASSWORD)
        assert_a_locked_down_page(http.get("/app"))
        live = http.get(f"/app/dashboards/{dashboard_id}")
        scripts = [e for e in assert_a_locked_down_page(live).elements if e[0] == "script"]
        assert len(scripts) == 1  # the poll, allowed by the nonce and nothing else
        assert directives(live)["connect-src"] == "'self'"

    def test_each_answer_has_a_nonce_of_its_own(self, http):
        first, second = (directives(http.get("/login"))["script-src"] for _ in range(2))
        assert first.startswith("'nonce-") and second.startswith("'nonce-")
        assert first != second
        assert len(first) - len("'nonce-'") >= 22  # at least 128 random bits

    def test_nonces_drawn_ahead_are_each_128_random_bits_handed_out_once(self):
        drawn = [new_nonce() for _ in range(3 * 256 + 5)]  # across three draws
        assert len(set(drawn)) == len(drawn)
        assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", nonce) for nonce in drawn)
        decoded = b"".join(base64.urlsafe_b64decode(nonce + "==") for nonce in drawn[:256])
        assert len(decoded) == 16 * 256
        assert len(set(decoded)) > 200  # the operating system's bytes, not a counter's

    def test_a_forked_process_draws_nonces_of_its_own(self):
        new_nonce()  # the parent has nonces drawn ahead
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover (the child)
            os.write(write, new_nonce().encode())
            os._exit(0)
        os.close(write)
        os.waitpid(child, 0)
        from_child = os.read(read, 64).decode()
        os.close(read)
        assert len(from_child) == 22
        assert from_child not in [new_nonce() for _ in range(256)]

    def test_a_partner_signed_in_as_a_client_sees_a_locked_down_portal(self, http, partner, db, portal_user):
        client_id, dashboard_id, _ = portal_user
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        assert enter(http, client_id).status_code == 303
        assert_a_locked_down_page(http.get("/app"))
        assert_a_locked_down_page(http.get(f"/app/dashboards/{dashboard_id}"))


class TestApiAnswers:
    def test_json_and_problem_answers_are_not_sniffed(self, http, partner):
        ok = http.get("/api/1/partner", headers=partner.headers)
        assert ok.status_code == 200
        assert ok.headers["x-content-type-options"] == "nosniff"
        refused = http.get("/api/1/partner")
        assert refused.status_code == 401
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert http.get("/static/tenantry.css").headers["x-content-type-options"] == "nosniff"


class TestAnswersOfTheRequestLayerItself:
    """Refusals made before any route runs get the same headers as every other answer."""

    TOO_LARGE = {"content-length": str(300 * 1024 * 1024)}

    def test_a_body_too_large_for_the_api_is_a_problem_that_is_not_sniffed(self, http, partner):
        refused = http.post("/api/1/clients", content=b"{", headers={**partner.headers, **self.TOO_LARGE})
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["x-content-type-options"] == "nosniff"
        assert refused.headers["x-request-id"]

    def test_a_form_too_large_for_a_page_is_a_locked_down_page(self, http):
        refused = http.post(
            "/partner/clients/import", content=b"x", headers={"accept": "text/html", **self.TOO_LARGE}
        )
        assert refused.status_code == 413
        assert "too large" in refused.text.lower()
        assert_a_locked_down_page(refused)
        assert refused.headers["x-frame-options"] == "DENY"


class TestTheRoot:
    def test_anyone_not_signed_in_is_sent_to_sign_in(self, http):
        response = http.get("/", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert http.get("/").url.path == "/login"

    def test_a_partner_user_is_sent_to_the_console(self, http, partner, db):
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        response = http.get("/", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/partner"

    def test_a_client_user_and_a_partner_signed_in_as_a_client_are_sent_to_the_portal(
        self, http, partner, db, portal_user
    ):
        client_id, _, user_email = portal_user
        sign_in(http, user_email, PASSWORD)
        assert http.get("/", follow_redirects=False).headers["location"] == "/app"
        http.cookies.clear()
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        enter(http, client_id)
        assert http.get("/", follow_redirects=False).headers["location"] == "/app"


HTML, JSON = (b"content-type", b"text/html; charset=utf-8"), (b"content-type", b"application/json")
NOSNIFF = (b"x-content-type-options", b"nosniff")
PAGE_POLICY = (b"content-security-policy", page_policy("n0nce").encode())
PAGE_HEADERS = [PAGE_POLICY, (b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin")]
OWN_POLICY = (b"Content-Security-Policy", b"frame-ancestors https://a.example")


@pytest.mark.parametrize(
    ("given", "added"),
    [
        ([JSON], [NOSNIFF]),
        ([HTML], [NOSNIFF, *PAGE_HEADERS]),
        ([(b"Content-Type", b"text/html")], [NOSNIFF, *PAGE_HEADERS]),
        ([HTML, OWN_POLICY], [NOSNIFF]),
        ([HTML, (b"referrer-policy", b"no-referrer")], [NOSNIFF, *PAGE_HEADERS[:2]]),
        ([NOSNIFF, JSON], []),
        ([JSON, HTML], [NOSNIFF]),  # the first content type is the answer's
        ([], [NOSNIFF]),
    ],
    ids=[
        "json: not sniffed",
        "a page: not sniffed, the page policy, not framed, referer to this origin",
        "header names in any case",
        "a page with a policy of its own keeps it",
        "a page's own referrer policy is kept",
        "not sniffed already: not said twice",
        "the first content type decides",
        "no headers at all",
    ],
)
def test_an_answers_headers_get_what_they_lack(given, added):
    assert with_security_headers(list(given), {"state": {"tenantry_csp_nonce": "n0nce"}}) == [*given, *added]

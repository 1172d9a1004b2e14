"""Requests on a partner's own domain (SPEC §16): only that partner's users sign in there, only
its published links are served there, a session does not cross to another partner's domain, and a
host that is no verified domain is the default address."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from tenantry.app import create_app
from tenantry.auth.secrets import verify_password
from tenantry.auth.sessions import SESSION_COOKIE
from tenantry.auth.signin import WRONG_CREDENTIALS
from tenantry.db.models import ClientUser, PartnerUser
from tests.content import dashboard_in, path_of, publish
from tests.factories import (
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_email,
    client_with_user,
    csrf_of,
    new_client,
    sign_in,
)

A_HOST, B_HOST = "agency-a.test", "agency-b.test"
NEW_PASSWORD = "a brand new secret 7"


@pytest.fixture
def two_partners(make_partner, own_domain):  # type: ignore[no-untyped-def]
    """Partners A and B, each with a verified domain of its own."""
    a, b = make_partner(), make_partner()
    own_domain(a, A_HOST)
    own_domain(b, B_HOST)
    return a, b


class TestSigningIn:
    def test_a_partners_admin_signs_in_on_its_own_domain(self, two_partners, at, db):
        a, _ = two_partners
        browser = at(A_HOST)
        response = sign_in(browser, admin_email(db, a), ADMIN_PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == "/partner"
        assert browser.get("/partner").status_code == 200

    def test_another_partners_admin_gets_the_wrong_password_answer_there(self, two_partners, at, db):
        a, b = two_partners
        theirs = sign_in(at(A_HOST), admin_email(db, b), ADMIN_PASSWORD)
        wrong = sign_in(at(A_HOST), admin_email(db, a), "not the password at all")
        unknown = sign_in(at(A_HOST), "nobody@nowhere.test", ADMIN_PASSWORD)
        assert theirs.status_code == wrong.status_code == unknown.status_code == 401
        assert WRONG_CREDENTIALS in theirs.text
        assert SESSION_COOKIE not in theirs.cookies
        # The three pages differ in nothing but the e-mail shown again in the form.
        strip = lambda page: re.sub(r'value="[^"]*"', "", page)  # noqa: E731
        assert strip(theirs.text) == strip(unknown.text)

    def test_on_the_default_address_every_partners_users_sign_in(self, two_partners, at, db):
        a, b = two_partners
        for partner in (a, b):
            assert sign_in(at("testserver"), admin_email(db, partner), ADMIN_PASSWORD).status_code == 303

    def test_client_users_sign_in_only_on_their_partners_domain(self, two_partners, http, clock, at):
        a, b = two_partners
        client_with_user(http, a, clock, "active", "ann@client-a.test")
        client_with_user(http, b, clock, "active", "bob@client-b.test")
        assert sign_in(at(A_HOST), "ann@client-a.test", PASSWORD).headers["location"] == "/app"
        assert sign_in(at(A_HOST), "bob@client-b.test", PASSWORD).status_code == 401
        assert sign_in(at(B_HOST), "bob@client-b.test", PASSWORD).status_code == 303

    def test_one_email_in_two_partners_clients_signs_in_to_the_hosts_one(self, two_partners, http, clock, at):
        a, b = two_partners
        a_client, _, _ = client_with_user(http, a, clock, "active", "same@client.test")
        b_client, _, _ = client_with_user(http, b, clock, "active", "same@client.test")
        browser = at(B_HOST)
        assert sign_in(browser, "same@client.test", PASSWORD).status_code == 303
        assert browser.get("/api/1/me").json()["client"]["id"] == b_client != a_client

    def test_signing_in_on_its_own_domain_never_resets_the_count_of_another_partners_account(
        self, two_partners, http, at, db
    ):
        victim, hostile = two_partners
        email = admin_email(db, victim)
        db.rollback()
        # The hostile partner gives a client of its own a user with the victim's e-mail, and knows
        # its password. Its domain shows only its own accounts, yet the count of guesses from this
        # address at this e-mail is every partner's.
        add_user(http, hostile, new_client(http, hostile, "trial"), email, password="the other one's own")
        guesses, own = [], []
        for _ in range(3):
            for n in range(3):
                guesses.append(sign_in(at("testserver"), email, f"guess {n}").status_code)
            own.append(sign_in(at(B_HOST), email, "the other one's own").status_code)
        assert guesses[:5] == [401] * 5
        assert set(guesses[5:]) == {429}
        # The pair is locked for both accounts alike: its own sign-in before the fifth failure only.
        assert own == [303, 429, 429]

    def test_an_unverified_domain_routes_nothing(self, make_partner, own_domain, at, db):
        a, b = make_partner(), make_partner()
        own_domain(a, "pending.agency-a.test", verified=False)
        # Served as the default address: any partner's users sign in there.
        assert sign_in(at("pending.agency-a.test"), admin_email(db, b), ADMIN_PASSWORD).status_code == 303

    def test_an_unknown_host_gets_the_default_sign_in_page(self, two_partners, at):
        page = at("random-host.example").get("/login")
        assert page.status_code == 200
        assert "Tenantry" in page.text


class TestSessions:
    def test_the_session_cookie_names_no_domain(self, two_partners, at, db):
        a, _ = two_partners
        response = sign_in(at(A_HOST), admin_email(db, a), ADMIN_PASSWORD)
        cookies = response.headers.get_list("set-cookie")
        session = [c for c in cookies if c.startswith(f"{SESSION_COOKIE}=")]
        assert len(session) == 1
        assert all("domain=" not in c.lower() for c in cookies)

    def test_a_session_made_on_a_partners_domain_is_signed_out_on_anothers(self, two_partners, at, db):
        a, _ = two_partners
        on_a = at(A_HOST)
        assert sign_in(on_a, admin_email(db, a), ADMIN_PASSWORD).status_code == 303
        cookie = on_a.cookies.get(SESSION_COOKIE)
        on_b = at(B_HOST)
        on_b.cookies.set(SESSION_COOKIE, cookie, domain=B_HOST)
        response = on_b.get("/partner", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
        assert on_b.get("/api/1/me").status_code == 401
        assert on_b.get("/login").status_code == 200  # the sign-in form, not the console
        # The same cookie still works where it was made.
        assert on_a.get("/api/1/me").status_code == 200

    def test_a_partners_session_still_works_on_the_default_address(self, two_partners, at, db):
        a, _ = two_partners
        browser = at("testserver")
        assert sign_in(browser, admin_email(db, a), ADMIN_PASSWORD).status_code == 303
        assert browser.get("/api/1/me").status_code == 200


class TestPublishedLinks:
    @pytest.fixture
    def links(self, two_partners, http):  # type: ignore[no-untyped-def]
        a, b = two_partners
        paths = []
        for partner in (a, b):
            _, _, dashboard_id = dashboard_in(http, partner, "active")
            created = publish(http, partner, dashboard_id)
            assert created.status_code == 201, created.text
            paths.append(path_of(created.json()))
        return paths

    def test_a_partners_link_is_served_on_its_domain(self, links, at):
        a_link, _ = links
        assert at(A_HOST).get(a_link).status_code == 200
        assert at(A_HOST).get(a_link + "/live").json()["available"] is True

    def test_another_partners_link_is_not_found_there(self, links, at):
        a_link, b_link = links
        page = at(A_HOST).get(b_link)
        assert page.status_code == 404
        assert "This dashboard is not available" in page.text
        assert at(A_HOST).get(b_link + "/live").status_code == 404
        assert at(B_HOST).get(a_link).status_code == 404
        unlock = at(A_HOST).post(b_link, data={"password": "x"}, follow_redirects=False)
        assert unlock.status_code == 404

    def test_another_partners_closed_link_is_not_found_there_either(self, two_partners, http, at):
        _, b = two_partners
        client_id, _, dashboard_id = dashboard_in(http, b, "active")
        link = path_of(publish(http, b, dashboard_id).json())
        response = http.patch(f"/api/1/clients/{client_id}", json={"status": "disabled"}, headers=b.headers)
        assert response.status_code == 200
        assert at(B_HOST).get(link).status_code == 403  # its own domain tells it is closed
        assert at(A_HOST).get(link).status_code == 404  # another's tells nothing

    def test_every_link_works_on_the_default_address_and_unknown_hosts(self, links, at):
        for host in ("testserver", "elsewhere.example"):
            for link in links:
                assert at(host).get(link).status_code == 200

    def test_a_removed_domain_stops_serving_its_partner(self, two_partners, links, at, http):
        a, _ = two_partners
        (domain,) = http.get("/api/1/partner/domains", headers=a.headers).json()["items"]
        assert http.delete(f"/api/1/partner/domains/{domain['id']}", headers=a.headers).status_code == 204
        # Now an unknown host: the default address, where every link is served.
        assert at(A_HOST).get(links[1]).status_code == 200


class TestOneTimeLinks:
    """A partner's invitation and reset links open on its own domain and on the default address;
    on another partner's domain they are not found and change nothing (SPEC §16)."""

    @pytest.fixture
    def app(self, settings, clock, database, smtp_server):  # type: ignore[no-untyped-def]
        changed = settings.model_copy(update={"domain_cache_seconds": 0})
        return create_app(changed, clock=clock, database=database, mailer=smtp_server.mailer)

    @pytest.fixture
    def partners(self, make_partner, own_domain):  # type: ignore[no-untyped-def]
        plan = {"users": 10, "dashboards": 10, "published_links": 10, "api_calls_per_day": 1000}
        a, b = make_partner(**plan), make_partner(**plan)
        own_domain(a, A_HOST)
        own_domain(b, B_HOST)
        return a, b

    @pytest.fixture
    def links(self, mailed_links):  # type: ignore[no-untyped-def]
        """The paths of the mailed links of one kind (`invite`, `reset`)."""
        return lambda kind: [urlsplit(link).path for link in mailed_links(kind)]

    @staticmethod
    def _choose(browser, path: str, password: str = NEW_PASSWORD):  # type: ignore[no-untyped-def]
        form = {"password": password, "confirm": password, "csrf_token": csrf_of(browser.get("/login").text)}
        return browser.post(path, data=form, follow_redirects=False)

    def _invited(self, http, partner, links) -> tuple[int, str]:  # type: ignore[no-untyped-def]
        client_id = new_client(http, partner, "trial")
        body = {"email": "ann@client-a.test", "name": "Ann", "role": "admin"}
        added = http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)
        assert added.status_code == 201, added.text
        [path] = links("invite")
        return added.json()["id"], path

    def _password_of(self, db, user_id: int) -> str | None:  # type: ignore[no-untyped-def]
        db.rollback()
        return db.scalars(select(ClientUser.password_hash).where(ClientUser.id == user_id)).one()

    def test_an_invitation_is_not_found_and_sets_no_password_on_another_partners_domain(
        self, partners, http, links, at, db
    ):
        a, _ = partners
        user_id, path = self._invited(http, a, links)
        elsewhere = at(B_HOST)
        shown, sent = elsewhere.get(path), self._choose(elsewhere, path)
        assert (shown.status_code, sent.status_code) == (404, 404)
        assert "Invitation not valid" in sent.text
        assert self._password_of(db, user_id) is None
        # Still open where it belongs.
        assert self._choose(at(A_HOST), path).status_code == 200
        assert verify_password(NEW_PASSWORD, self._password_of(db, user_id))

    @pytest.mark.parametrize("host", [A_HOST, "testserver"])
    def test_an_invitation_works_on_its_partners_domain_and_on_the_default_address(
        self, partners, http, links, at, db, host
    ):
        a, _ = partners
        user_id, path = self._invited(http, a, links)
        assert at(host).get(path).status_code == 200
        assert self._choose(at(host), path).status_code == 200
        assert verify_password(NEW_PASSWORD, self._password_of(db, user_id))

    def test_a_reset_link_is_not_found_and_changes_nothing_on_another_partners_domain(
        self, partners, http, links, at, db
    ):
        a, _ = partners
        email = admin_email(db, a)
        before = db.get(PartnerUser, a.admin_user_id).password_hash
        db.rollback()
        assert http.post("/api/1/auth/password-reset", json={"email": email}).status_code == 202
        [path] = links("reset")
        elsewhere = at(B_HOST)
        shown, sent = elsewhere.get(path), self._choose(elsewhere, path)
        assert (shown.status_code, sent.status_code) == (404, 404)
        assert "Link not valid" in sent.text
        assert db.get(PartnerUser, a.admin_user_id).password_hash == before
        db.rollback()
        # Still open on the default address.
        assert self._choose(at("testserver"), path).status_code == 200
        assert sign_in(at(A_HOST), email, NEW_PASSWORD).status_code == 303


class TestTheCertificateCheck:
    def test_a_verified_domain_is_answered_200_and_anything_else_404(self, make_partner, own_domain, http):
        a = make_partner()
        own_domain(a, A_HOST)
        own_domain(a, "pending.agency-a.test", verified=False)
        assert http.get("/internal/tls-ask", params={"domain": A_HOST}).status_code == 200
        assert http.get("/internal/tls-ask", params={"domain": "AGENCY-A.test."}).status_code == 200
        for name in ("pending.agency-a.test", "unknown.example", "", "127.0.0.1", "[::1]", "x" * 300):
            assert http.get("/internal/tls-ask", params={"domain": name}).status_code in (404, 422), name
        assert http.get("/internal/tls-ask").status_code == 404

    def test_a_removed_domain_gets_no_certificate(self, make_partner, own_domain, http):
        a = make_partner()
        domain_id = own_domain(a, A_HOST)
        http.delete(f"/api/1/partner/domains/{domain_id}", headers=a.headers)
        assert http.get("/internal/tls-ask", params={"domain": A_HOST}).status_code == 404

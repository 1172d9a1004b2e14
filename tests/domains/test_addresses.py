"""What e-mails and published links point at: the partner's first verified domain over https,
else the operator's TENANTRY_BASE_URL."""

from __future__ import annotations

import re

import pytest

from tenantry.domains import partner_base_url
from tests.content import dashboard_in, publish
from tests.factories import new_client, post_form


@pytest.fixture
def smtp_http(settings, smtp_app):  # type: ignore[no-untyped-def]
    """The app sending its e-mail through the test's real SMTP server, reading the domains' table
    on every request (a domain verified just before serves at once)."""
    with smtp_app(settings.model_copy(update={"domain_cache_seconds": 0})) as client:
        yield client


def invitation_link(http, partner, smtp_server, send_mail, email: str) -> str:  # type: ignore[no-untyped-def]
    client_id = new_client(http, partner, "trial")
    body = {"email": email, "name": "Invitee", "role": "admin"}
    response = http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)
    assert response.status_code == 201, response.text
    assert send_mail() == 1
    message = smtp_server.messages[-1]
    found = re.search(r"\S+/invite/\S+", message.get_body(("plain",)).get_content())
    assert found is not None
    return found.group(0)


class TestInvitations:
    def test_an_invitation_links_to_the_partners_verified_domain_over_https(
        self, smtp_http, make_partner, own_domain, smtp_server, send_mail
    ):
        partner = make_partner(users=10, dashboards=10, published_links=10)
        own_domain(partner, "pending.agency.test", verified=False)
        own_domain(partner, "portal.agency.test")
        own_domain(partner, "second.agency.test")
        link = invitation_link(smtp_http, partner, smtp_server, send_mail, "ann@client.test")
        assert link.startswith("https://portal.agency.test/invite/")

    def test_an_imported_clients_admin_is_invited_on_the_partners_verified_domain(
        self, smtp_http, make_partner, own_domain, smtp_server, send_mail
    ):
        partner = make_partner(users=10, dashboards=10, published_links=10)
        own_domain(partner, "portal.agency.test")
        text = "name,status,users,admin_email\nNorth,trial,1,ann@north.test\n"
        headers = {**partner.headers, "Content-Type": "text/csv"}
        response = smtp_http.post("/api/1/clients/import", content=text.encode(), headers=headers)
        assert response.status_code == 201, response.text
        assert send_mail() == 1
        found = re.search(r"\S+/invite/\S+", smtp_server.messages[-1].get_body(("plain",)).get_content())
        assert found is not None and found.group(0).startswith("https://portal.agency.test/invite/")

    def test_without_a_verified_domain_it_links_to_the_servers_address(
        self, smtp_http, make_partner, own_domain, smtp_server, send_mail, settings
    ):
        partner = make_partner(users=10, dashboards=10, published_links=10)
        own_domain(partner, "pending.agency.test", verified=False)
        link = invitation_link(smtp_http, partner, smtp_server, send_mail, "bob@client.test")
        assert link.startswith(settings.base_url + "/invite/")

    def test_another_partners_domain_is_never_used(
        self, smtp_http, make_partner, own_domain, smtp_server, send_mail, settings
    ):
        a, b = make_partner(users=10), make_partner(users=10)
        own_domain(a, "portal.agency-a.test")
        link = invitation_link(smtp_http, b, smtp_server, send_mail, "cy@client.test")
        assert link.startswith(settings.base_url + "/invite/")

    def test_the_link_opens_the_invitation_on_the_partners_domain(
        self, smtp_http, make_partner, own_domain, smtp_server, send_mail, at
    ):
        partner = make_partner(users=10)
        own_domain(partner, "portal.agency.test")
        link = invitation_link(smtp_http, partner, smtp_server, send_mail, "dee@client.test")
        path = link.removeprefix("https://portal.agency.test")
        assert at("portal.agency.test").get(path).status_code == 200


class TestPublishedLinkUrls:
    def test_a_new_links_url_is_on_the_partners_domain(self, http, partner, own_domain, at):
        own_domain(partner, "dashboards.agency.test")
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        url = publish(http, partner, dashboard_id).json()["url"]
        assert url.startswith("https://dashboards.agency.test/published/")
        path = url.removeprefix("https://dashboards.agency.test")
        assert at("dashboards.agency.test").get(path).status_code == 200

    def test_the_console_shows_the_url_on_the_partners_domain(
        self, http, partner, own_domain, partner_session
    ):
        own_domain(partner, "dashboards.agency.test")
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        page = f"/partner/clients/{client_id}"
        response = post_form(
            partner_session,
            f"/partner/clients/{client_id}/dashboards/{dashboard_id}/links",
            page,
            name="Board",
        )
        assert response.status_code == 303, response.text
        shown = partner_session.get(response.headers["location"]).text
        assert "https://dashboards.agency.test/published/" in shown

    def test_without_a_domain_the_url_is_on_the_servers_address(self, http, partner, settings):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        assert (
            publish(http, partner, dashboard_id).json()["url"].startswith(settings.base_url + "/published/")
        )


def test_partner_base_url_is_the_first_verified_domain_by_id(make_partner, own_domain, db, settings):
    partner = make_partner()
    assert partner_base_url(db, settings, partner.id) == settings.base_url
    own_domain(partner, "b.agency.test")
    own_domain(partner, "a.agency.test")
    db.rollback()
    assert partner_base_url(db, settings, partner.id) == "https://b.agency.test"
    assert partner_base_url(db, settings, None) == settings.base_url

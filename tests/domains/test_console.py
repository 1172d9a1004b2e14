"""The console's Domains page: the partner's domains with their state, adding and removing one."""

from __future__ import annotations

import pytest

from tests.factories import PASSWORD, add_partner_viewer, client_with_user, csrf_of, post_form, sign_in

PAGE = "/partner/domains"


def listed(http, partner) -> list[tuple[str, bool]]:  # type: ignore[no-untyped-def]
    items = http.get("/api/1/partner/domains", headers=partner.headers).json()["items"]
    return [(d["hostname"], d["verified"]) for d in items]


@pytest.mark.usefixtures("partner_session")
class TestTheDomainsPage:
    def test_it_tells_the_partner_where_to_point_dns_and_who_verifies(self, http):
        page = http.get(PAGE)
        assert page.status_code == 200
        assert "Point its DNS at this server" in page.text
        assert "ask the operator to verify it" in page.text
        assert '<a href="/partner/domains">Domains</a>' in page.text

    def test_adding_a_domain_shows_it_waiting_for_the_operator(self, http, partner):
        answer = post_form(http, PAGE, PAGE, hostname="Portal.Agency.test")
        assert answer.status_code == 303
        page = http.get(PAGE).text
        assert "Domain portal.agency.test added" in page
        assert "Waiting for the operator" in page
        assert listed(http, partner) == [("portal.agency.test", False)]

    def test_a_verified_domain_shows_as_verified(self, http, partner, own_domain):
        own_domain(partner, "portal.agency.test")
        assert "Verified" in http.get(PAGE).text

    @pytest.mark.parametrize("hostname", ["not a domain", "localhost", "10.0.0.1"])
    def test_a_bad_name_goes_back_with_the_reason_and_adds_nothing(self, http, partner, hostname):
        answer = post_form(http, PAGE, PAGE, hostname=hostname)
        assert answer.status_code == 303
        page = http.get(PAGE).text
        assert 'class="error"' in page
        assert listed(http, partner) == []

    def test_a_taken_name_goes_back_saying_so(self, http, partner, make_partner, own_domain):
        own_domain(make_partner(), "portal.agency.test", verified=False)
        post_form(http, PAGE, PAGE, hostname="portal.agency.test")
        assert "already in use" in http.get(PAGE).text
        assert listed(http, partner) == []

    def test_removing_a_domain(self, http, partner, own_domain):
        domain_id = own_domain(partner, "portal.agency.test")
        answer = post_form(http, f"{PAGE}/{domain_id}/remove", PAGE)
        assert answer.status_code == 303
        assert "Domain removed" in http.get(PAGE).text
        assert listed(http, partner) == []

    def test_a_forged_form_changes_nothing(self, http, partner, own_domain):
        domain_id = own_domain(partner, "portal.agency.test")
        assert http.post(PAGE, data={"hostname": "b.agency.test", "csrf_token": "x"}).status_code == 403
        assert http.post(f"{PAGE}/{domain_id}/remove", data={"csrf_token": "x"}).status_code == 403
        assert listed(http, partner) == [("portal.agency.test", True)]

    def test_another_partners_domain_cannot_be_removed(self, http, partner, make_partner, own_domain):
        other = make_partner()
        theirs = own_domain(other, "portal.other.test")
        post_form(http, f"{PAGE}/{theirs}/remove", PAGE)
        assert "No domain" in http.get(PAGE).text
        assert listed(http, other) == [("portal.other.test", True)]


def test_a_viewer_sees_the_domains_without_the_forms(http, partner, own_domain, database, clock):
    own_domain(partner, "portal.agency.test")
    add_partner_viewer(database, partner, clock)
    assert sign_in(http, "viewer@partner.test", PASSWORD).status_code == 303
    page = http.get(PAGE).text
    assert "portal.agency.test" in page
    assert "Add domain" not in page and "Remove portal.agency.test" not in page
    form = {"hostname": "b.agency.test", "csrf_token": csrf_of(page)}
    answer = http.post(PAGE, data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert "Only an admin" in http.get(PAGE).text
    assert listed(http, partner) == [("portal.agency.test", True)]


def test_signed_out_the_page_sends_to_sign_in(http):
    answer = http.get(PAGE, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"


def test_a_client_user_is_sent_to_the_portal(http, partner, clock):
    client_with_user(http, partner, clock, "active", "ann@client.test")
    sign_in(http, "ann@client.test", PASSWORD)
    assert http.get(PAGE, follow_redirects=False).headers["location"] == "/app"

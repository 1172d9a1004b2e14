"""The domains API (SPEC §16): a partner's host names, each written one way, and nobody else's."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.db.domain_models import PartnerDomain
from tests.content import client_key, make_client, partner_user_headers

DOMAINS = "/api/1/partner/domains"


def add(http, partner, hostname: str):  # type: ignore[no-untyped-def]
    return http.post(DOMAINS, json={"hostname": hostname}, headers=partner.headers)


def count(db) -> int:  # type: ignore[no-untyped-def]
    db.rollback()
    return int(db.scalar(select(func.count()).select_from(PartnerDomain)) or 0)


class TestAddingADomain:
    def test_a_partner_admin_adds_a_domain_that_is_not_verified_yet(self, http, partner):
        response = http.post(DOMAINS, json={"hostname": "dashboards.agency.test"}, headers=partner.headers)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["hostname"], body["verified"], body["verified_at"]) == (
            "dashboards.agency.test",
            False,
            None,
        )
        listed = http.get(DOMAINS, headers=partner.headers).json()
        assert [d["id"] for d in listed["items"]] == [body["id"]]
        assert listed["total"] == 1

    @pytest.mark.parametrize(
        ("given", "kept"),
        [
            ("Dashboards.Agency.TEST", "dashboards.agency.test"),
            ("dashboards.agency.test.", "dashboards.agency.test"),
            ("  portal.agency.test  ", "portal.agency.test"),
            ("bücher.example", "xn--bcher-kva.example"),
            # As browsers send it (UTS #46 non-transitional), not IDNA 2003's "strasse": another name.
            ("straße.example.com", "xn--strae-oqa.example.com"),
            ("a-b.c-d.example", "a-b.c-d.example"),
            ("x" * 63 + ".example", "x" * 63 + ".example"),
            ("1.example", "1.example"),
        ],
    )
    def test_a_host_name_is_kept_in_one_spelling(self, http, partner, given, kept):
        response = http.post(DOMAINS, json={"hostname": given}, headers=partner.headers)
        assert response.status_code == 201, response.text
        assert response.json()["hostname"] == kept

    @pytest.mark.parametrize(
        "hostname",
        [
            "",
            "example",  # one label
            "localhost",
            "app.localhost",
            "-agency.example",
            "agency-.example",
            "agen_cy.example",
            "agency..example",
            "x" * 64 + ".example",  # a label over 63
            ".".join(["a" * 60] * 5),  # over 253 in all
            "10.0.0.1",
            "127.1",
            "::1",
            "[::1]",
            "agency.example:8443",
            "https://agency.example",
            "agency.example/path",
            "user@agency.example",
            "agency example.com",
            "agency.example\n",
            "agency\u2028.example",
            "xn--.example",  # not a valid punycode label
        ],
    )
    def test_a_name_that_is_not_a_dns_name_is_refused_naming_the_field(self, http, partner, db, hostname):
        response = http.post(DOMAINS, json={"hostname": hostname}, headers=partner.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert "hostname" in str(problem["errors"][0]["loc"])
        assert count(db) == 0

    def test_a_hostname_of_the_wrong_type_or_an_unknown_field_is_refused(self, http, partner, db):
        for body in ({"hostname": 42}, {"hostname": "a.example", "verified": True}, {}):
            response = http.post(DOMAINS, json=body, headers=partner.headers)
            assert response.status_code == 422, body
        assert count(db) == 0

    def test_the_servers_own_host_name_is_refused(self, http, partner, settings, db):
        own = settings.base_url.split("//")[1].split(":")[0]
        assert own == "127.0.0.1"  # an address already; a named base URL is checked too:
        app_settings = settings.model_copy(update={"base_url": "https://tenantry.example.com"})
        from fastapi.testclient import TestClient

        from tenantry.app import create_app

        with TestClient(create_app(app_settings, database=http.app.state.services.database)) as other:
            response = add(other, partner, "Tenantry.Example.com.")
        assert response.status_code == 422
        assert response.json()["field"] == "hostname"
        assert count(db) == 0

    def test_a_name_any_partner_holds_is_taken(self, http, partner, make_partner, db):
        other = make_partner()
        assert add(http, other, "a.agency.test").status_code == 201
        for headers in (partner.headers, other.headers):
            response = http.post(DOMAINS, json={"hostname": "A.agency.test."}, headers=headers)
            assert response.status_code == 409
            assert response.json()["code"] == "duplicate"
        assert count(db) == 1

    def test_a_partner_holds_at_most_twenty_domains(self, http, partner, db):
        for n in range(20):
            assert add(http, partner, f"d{n}.agency.test").is_success
        response = http.post(DOMAINS, json={"hostname": "d20.agency.test"}, headers=partner.headers)
        assert response.status_code == 409
        assert response.json()["code"] == "limit_reached"
        assert count(db) == 20


class TestWhoMayChangeDomains:
    def test_a_client_key_is_refused_and_changes_nothing(self, http, partner, db, clock):
        client_id = make_client(http, partner, "active")
        _, headers = client_key(db, clock, partner, client_id, "admin")
        assert http.post(DOMAINS, json={"hostname": "a.agency.test"}, headers=headers).status_code == 403
        assert http.get(DOMAINS, headers=headers).status_code == 403
        assert count(db) == 0

    def test_a_partner_viewer_reads_but_cannot_add_or_remove(self, http, partner, db, clock):
        domain_id = add(http, partner, "a.agency.test").json()["id"]
        viewer = partner_user_headers(db, clock, partner, "viewer")
        assert http.get(DOMAINS, headers=viewer).json()["total"] == 1
        assert http.post(DOMAINS, json={"hostname": "b.agency.test"}, headers=viewer).status_code == 403
        assert http.delete(f"{DOMAINS}/{domain_id}", headers=viewer).status_code == 403
        assert count(db) == 1

    def test_an_editor_cannot_change_domains_either(self, http, partner, db, clock):
        editor = partner_user_headers(db, clock, partner, "editor")
        assert http.post(DOMAINS, json={"hostname": "b.agency.test"}, headers=editor).status_code == 403
        assert count(db) == 0

    def test_without_a_key_nothing_is_stored(self, http, db):
        assert http.post(DOMAINS, json={"hostname": "a.agency.test"}).status_code == 401
        assert count(db) == 0


class TestRemovingADomain:
    def test_a_partner_removes_its_own_domain(self, http, partner, db):
        domain_id = add(http, partner, "a.agency.test").json()["id"]
        assert http.delete(f"{DOMAINS}/{domain_id}", headers=partner.headers).status_code == 204
        assert http.get(DOMAINS, headers=partner.headers).json()["items"] == []
        assert http.delete(f"{DOMAINS}/{domain_id}", headers=partner.headers).status_code == 404

    def test_another_partners_domain_is_not_found_and_stays(self, http, partner, make_partner, db):
        other = make_partner()
        theirs = http.post(DOMAINS, json={"hostname": "b.other.test"}, headers=other.headers).json()["id"]
        response = http.delete(f"{DOMAINS}/{theirs}", headers=partner.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert http.get(DOMAINS, headers=partner.headers).json()["total"] == 0
        assert count(db) == 1

    @pytest.mark.parametrize("domain_id", ["0", "-1", "99999999999999999999", "abc"])
    def test_an_id_that_names_no_domain_is_a_4xx(self, http, partner, domain_id):
        response = http.delete(f"{DOMAINS}/{domain_id}", headers=partner.headers)
        assert response.status_code in (404, 422)


def test_two_partners_adding_one_name_at_once_get_one_201_and_one_409(server_url, make_partner, db):
    import threading

    import httpx

    partners = [make_partner() for _ in range(6)]
    answers: list[int] = []
    start = threading.Barrier(len(partners))

    def claim(partner) -> None:  # type: ignore[no-untyped-def]
        with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as client:
            start.wait()
            answers.append(client.post(DOMAINS, json={"hostname": "contested.example"}).status_code)

    threads = [threading.Thread(target=claim, args=(p,)) for p in partners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [201] + [409] * 5
    assert count(db) == 1


def test_a_name_taken_between_the_check_and_the_insert_is_still_a_409(
    http, partner, make_partner, db, monkeypatch
):
    from tenantry.domains import repository

    other = make_partner()
    assert add(http, other, "raced.example").status_code == 201
    # As if the other partner's insert had landed just after this request looked.
    monkeypatch.setattr(repository, "find_by_hostname", lambda _db, _name: None)
    response = add(http, partner, "raced.example")
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate"
    assert count(db) == 1
    # The request's other writes were rolled back with it: no audit record of an addition.
    from tenantry.db.models import AuditEvent

    db.rollback()
    actions = db.scalars(select(AuditEvent.action).where(AuditEvent.partner_id == partner.id)).all()
    assert "domain.added" not in actions

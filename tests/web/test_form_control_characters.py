"""SPEC §12 "Text" in the console's and the portal's forms: a one-line field with a control
character is refused with the same sentence as the API (naming the field), shown on the page, and
the form changes nothing."""

from __future__ import annotations

import pytest

from tests.content import ROWS, create_dashboard, inline_source
from tests.factories import PASSWORD, add_user, client_with_user, csrf_of, new_client, post_form, sign_in


def refused_on(http, answer, page: str, sentence: str) -> None:
    assert answer.status_code == 303 and answer.headers["location"] == page
    text = http.get(page).text
    assert 'class="error"' in text and sentence in text, text


def api(http, partner, path: str):
    response = http.get(path, headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.usefixtures("partner_session")
class TestConsole:
    def test_a_new_client_named_with_a_line_break_is_refused_in_words(self, http, partner):
        page = "/partner/clients/new"
        answer = post_form(http, "/partner/clients", page, name="Acme\r\nBcc: x@evil.test", status="setup")
        refused_on(
            http, answer, page, "Name: must not contain control characters (found U+000D at position 5)."
        )
        assert api(http, partner, "/api/1/clients")["total"] == 0

    def test_details_with_a_nul_in_the_description_are_refused_and_kept(self, http, partner):
        client_id = new_client(http, partner, "setup")
        page = f"/partner/clients/{client_id}"
        answer = post_form(
            http, f"{page}/details", page, name="Renamed", description="a\x00b", external_id=""
        )
        refused_on(http, answer, page, "Description: must not contain control characters other than tab")
        assert api(http, partner, f"/api/1/clients/{client_id}")["name"] == "Client setup"

    def test_a_status_reason_keeps_its_line_breaks_and_refuses_an_escape(self, http, partner):
        client_id = new_client(http, partner, "setup", dashboards=1, users=1)
        page = f"/partner/clients/{client_id}"
        answer = post_form(http, f"{page}/status", page, status="trial", reason="x\x1b[2J")
        refused_on(http, answer, page, "Reason: must not contain control characters other than tab")
        assert api(http, partner, f"/api/1/clients/{client_id}")["status"] == "setup"
        post_form(http, f"{page}/status", page, status="trial", reason="Signed\r\nby phone")
        history = api(http, partner, f"/api/1/clients/{client_id}/history")["items"]
        assert history[-1]["reason"] == "Signed\r\nby phone"

    def test_a_user_with_a_line_break_in_the_address_is_refused(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        answer = post_form(
            http, f"{page}/users", page, email="a@client.test\nBcc: x@evil.test", name="A", role="member"
        )
        refused_on(http, answer, page, "Email: must not contain control characters (found U+000A")
        assert api(http, partner, f"/api/1/clients/{client_id}/users")["total"] == 0

    def test_a_data_source_a_dashboard_a_klip_and_a_link_refuse_control_characters(self, http, partner):
        client_id = new_client(http, partner, "trial", dashboards=2, published_links=2)
        page = f"/partner/clients/{client_id}"
        answer = post_form(http, f"{page}/datasources", page, name="S\x00", kind="inline", csv_text="a\n1\n")
        refused_on(http, answer, page, "Name: must not contain control characters (found U+0000")
        assert api(http, partner, f"/api/1/clients/{client_id}/datasources")["total"] == 0

        source_id = inline_source(http, partner, client_id)
        form = {"title": "Total", "kind": "value", "datasource_id": str(source_id), "value": "sales"}
        answer = post_form(http, f"{page}/dashboards", page, name="Board\u2028", **form)
        refused_on(http, answer, page, "Name: must not contain control characters (found U+2028")
        answer = post_form(http, f"{page}/dashboards", page, name="Board", **{**form, "title": "To\x85tal"})
        refused_on(http, answer, page, "Title: must not contain control characters (found U+0085")
        assert api(http, partner, f"/api/1/clients/{client_id}/dashboards")["total"] == 0

        board = create_dashboard(http, partner, client_id, source_id, klips=[], name="Board").json()["id"]
        answer = post_form(http, f"{page}/dashboards/{board}/links", page, name="Wall\r\n")
        refused_on(http, answer, page, "Name: must not contain control characters (found U+000D")
        assert api(http, partner, f"/api/1/dashboards/{board}/published-links")["total"] == 0

    def test_a_search_with_a_nul_is_refused_in_words_not_a_500(self, http, partner):
        new_client(http, partner, "setup")
        answer = http.get("/partner/clients", params={"q": "a\x00b"}, follow_redirects=False)
        assert answer.status_code == 303
        page = http.get(answer.headers["location"]).text
        assert "Search: must not contain control characters (found U+0000 at position 2)." in page
        assert "Client setup" in page

    def test_a_key_named_with_a_control_character_is_refused_in_words(self, http, partner):
        before = api(http, partner, "/api/1/me/api-keys")["total"]
        answer = http.post(
            "/account/api-keys",
            data={"name": "deploy\x07key", "csrf_token": csrf_of(http.get("/partner").text)},
        )
        assert answer.status_code == 422
        assert "Name: must not contain control characters (found U+0007 at position 7)." in answer.text
        assert api(http, partner, "/api/1/me/api-keys")["total"] == before


class TestPortal:
    def test_the_clients_admin_is_refused_a_user_named_with_a_line_break(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        sign_in(http, "admin@client.test", PASSWORD)
        answer = post_form(
            http, "/app/users", "/app", email="b@client.test", name="B\nBcc: x@evil.test", role="member"
        )
        refused_on(http, answer, "/app", "Name: must not contain control characters (found U+000A")
        assert api(http, partner, f"/api/1/clients/{client_id}/users")["total"] == 1

    def test_a_dashboard_is_not_emailed_to_an_address_with_a_line_break(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
        source_id = inline_source(http, partner, client_id, ROWS)
        board = create_dashboard(http, partner, client_id, source_id, klips=[]).json()["id"]
        sign_in(http, "admin@client.test", PASSWORD)
        page = f"/app/dashboards/{board}"
        answer = post_form(
            http, f"{page}/email", page, to="boss@client.test\r\nBcc: x@evil.test", format="pdf"
        )
        refused_on(http, answer, page, "To: must not contain control characters (found U+000D")

    def test_a_key_from_the_portal_is_held_to_the_same_rule(self, http, partner):
        add_user(http, partner, new_client(http, partner, "active"), "user@client.test")
        sign_in(http, "user@client.test", PASSWORD)
        answer = http.post(
            "/account/api-keys", data={"name": "k\x00", "csrf_token": csrf_of(http.get("/app").text)}
        )
        assert answer.status_code == 422 and "Name: must not contain control characters" in answer.text

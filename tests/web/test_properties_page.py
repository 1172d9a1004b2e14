"""A client's properties on the console's client page (an editable key/value table that replaces
them all) and, read-only, in the portal of the client's admin."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD, add_user, client_with_user, new_client, post_form, sign_in


def properties_of(http: Any, partner: Any, client_id: int) -> dict[str, str]:
    answer = http.get(f"/api/1/clients/{client_id}/properties", headers=partner.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def put(http: Any, partner: Any, client_id: int, values: dict[str, str]) -> None:
    answer = http.put(f"/api/1/clients/{client_id}/properties", json=values, headers=partner.headers)
    assert answer.status_code == 200, answer.text


@pytest.mark.usefixtures("partner_session")
class TestConsole:
    def test_the_partner_saves_properties_and_the_page_shows_them(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        answer = post_form(
            http, f"{page}/properties", page, key=["account", "region", ""], value=["acme-7", "north", ""]
        )
        assert answer.headers["location"] == page
        text = http.get(page).text
        assert "2 properties saved." in text
        assert 'value="account"' in text and 'value="acme-7"' in text
        assert properties_of(http, partner, client_id) == {"account": "acme-7", "region": "north"}

    def test_clearing_a_key_removes_that_property(self, http, partner):
        client_id = new_client(http, partner, "trial")
        put(http, partner, client_id, {"account": "acme-7", "region": "north"})
        page = f"/partner/clients/{client_id}"
        post_form(http, f"{page}/properties", page, key=["account", ""], value=["acme-7", "north"])
        assert properties_of(http, partner, client_id) == {"account": "acme-7"}

    @pytest.mark.parametrize(
        ("keys", "values", "words"),
        [
            (["Bad Key"], ["x"], "Bad Key"),
            (["account", "account"], ["a", "b"], "Property &#39;account&#39; is given twice."),
        ],
    )
    def test_a_malformed_table_is_refused_in_a_sentence_and_nothing_changes(
        self, http, partner, keys, values, words
    ):
        client_id = new_client(http, partner, "trial")
        put(http, partner, client_id, {"account": "acme-7"})
        page = f"/partner/clients/{client_id}"
        post_form(http, f"{page}/properties", page, key=keys, value=values)
        text = http.get(page).text
        assert 'class="error"' in text and words in text
        assert properties_of(http, partner, client_id) == {"account": "acme-7"}

    def test_a_hundred_properties_are_saved_and_one_more_is_refused(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        keys = [f"k{n}" for n in range(101)]
        post_form(http, f"{page}/properties", page, key=keys[:100], value=keys[:100])
        assert len(properties_of(http, partner, client_id)) == 100
        post_form(http, f"{page}/properties", page, key=keys, value=keys)
        assert "Properties: Dictionary should have at most 100 items" in http.get(page).text
        assert len(properties_of(http, partner, client_id)) == 100

    def test_without_the_forms_token_nothing_changes(self, http, partner):
        client_id = new_client(http, partner, "trial")
        put(http, partner, client_id, {"account": "acme-7"})
        answer = http.post(
            f"/partner/clients/{client_id}/properties", data={"key": ["account"], "value": ["evil"]}
        )
        assert answer.status_code == 403
        assert properties_of(http, partner, client_id) == {"account": "acme-7"}

    def test_another_partners_client_is_not_found_and_keeps_its_properties(self, http, partner, make_partner):
        other = make_partner(dashboards=5, users=5, published_links=5)
        theirs = new_client(http, other, "trial")
        put(http, other, theirs, {"account": "theirs"})
        mine = new_client(http, partner, "trial")
        assert http.get(f"/partner/clients/{theirs}").status_code == 404
        post_form(
            http,
            f"/partner/clients/{theirs}/properties",
            f"/partner/clients/{mine}",
            key=["account"],
            value=["x"],
        )
        assert properties_of(http, other, theirs) == {"account": "theirs"}


class TestPortal:
    def test_the_clients_admin_sees_the_properties_without_a_form_to_change_them(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        put(http, partner, client_id, {"account": "acme-7"})
        sign_in(http, "admin@client.test", PASSWORD)
        text = http.get("/app").text
        assert '<td data-label="Value">acme-7</td>' in text
        assert 'name="key"' not in text

    def test_a_member_sees_no_properties(self, http, partner, clock):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        add_user(http, partner, client_id, "member@client.test", role="member")
        put(http, partner, client_id, {"account": "acme-7"})
        sign_in(http, "member@client.test", PASSWORD)
        assert "acme-7" not in http.get("/app").text

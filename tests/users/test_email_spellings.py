"""An e-mail address written composed (`é` as one character) or decomposed (`e` and a combining
accent) is one address (SPEC §2: a client user's e-mail is unique in its client, a partner user's in
the product): one user, and that user signs in whichever way the address is typed."""

from __future__ import annotations

from tests.factories import PASSWORD, new_client, sign_in

COMPOSED = "\u00e9lise@client.test"  # é as one character
DECOMPOSED = "e\u0301lise@client.test"  # e and a combining acute accent
PARTNER_USER = {"name": "Élise", "role": "editor", "password": "a long secret 2"}


def post_client_user(http, partner, client_id, email):  # type: ignore[no-untyped-def]
    body = {"email": email, "name": "Élise", "password": PASSWORD}
    return http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)


def client_user_emails(http, partner, client_id) -> list[str]:  # type: ignore[no-untyped-def]
    listed = http.get(f"/api/1/clients/{client_id}/users", headers=partner.headers).json()
    return [user["email"] for user in listed["items"]]


class TestClientUsersSpelledTwoWays:
    def test_the_decomposed_spelling_of_a_client_users_address_is_a_duplicate(self, http, partner):
        client_id = new_client(http, partner, "trial")
        assert post_client_user(http, partner, client_id, COMPOSED).status_code == 201
        duplicate = post_client_user(http, partner, client_id, DECOMPOSED)
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "duplicate"
        assert client_user_emails(http, partner, client_id) == [COMPOSED]

    def test_an_address_given_decomposed_is_kept_composed(self, http, partner):
        client_id = new_client(http, partner, "trial")
        added = post_client_user(http, partner, client_id, DECOMPOSED.upper())
        assert added.status_code == 201
        assert added.json()["email"] == COMPOSED
        assert post_client_user(http, partner, client_id, COMPOSED).status_code == 409

    def test_a_client_user_added_decomposed_signs_in_typing_the_composed_spelling(self, http, partner):
        client_id = new_client(http, partner, "trial")
        assert post_client_user(http, partner, client_id, DECOMPOSED).status_code == 201
        assert sign_in(http, COMPOSED, PASSWORD).status_code == 303

    def test_a_client_user_added_composed_signs_in_typing_the_decomposed_spelling(self, http, partner):
        client_id = new_client(http, partner, "trial")
        assert post_client_user(http, partner, client_id, COMPOSED).status_code == 201
        assert sign_in(http, DECOMPOSED, PASSWORD).status_code == 303


class TestPartnerUsersSpelledTwoWays:
    def test_the_decomposed_spelling_of_a_partner_users_address_is_a_duplicate_in_another_partner(
        self, http, partner, make_partner
    ):
        added = http.post(
            "/api/1/partner/users", json={**PARTNER_USER, "email": COMPOSED}, headers=partner.headers
        )
        assert added.status_code == 201
        other = make_partner()
        duplicate = http.post(
            "/api/1/partner/users", json={**PARTNER_USER, "email": DECOMPOSED}, headers=other.headers
        )
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "duplicate"
        listed = http.get("/api/1/partner/users", headers=other.headers).json()
        assert listed["total"] == 1  # its admin alone

    def test_a_partner_user_added_decomposed_signs_in_typing_the_composed_spelling(self, http, partner):
        body = {**PARTNER_USER, "email": DECOMPOSED}
        assert http.post("/api/1/partner/users", json=body, headers=partner.headers).status_code == 201
        assert sign_in(http, COMPOSED, PARTNER_USER["password"]).status_code == 303


class TestAnAddressThatComposesIntoAnother:
    def test_one_that_composes_into_a_separator_of_addresses_is_refused_and_nothing_is_added(
        self, http, partner
    ):
        client_id = new_client(http, partner, "trial")
        # U+037E GREEK QUESTION MARK is `;` once composed: two addresses to a mail header.
        refused = post_client_user(http, partner, client_id, "ann\u037ebob@client.test")
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert client_user_emails(http, partner, client_id) == []

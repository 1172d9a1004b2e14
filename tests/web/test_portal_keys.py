"""API keys from the pages: a signed-in user creates its first key, sees it once, and revokes it."""

from __future__ import annotations

import re

from tests.factories import PASSWORD, add_user, csrf_of, new_client, set_status, sign_in


def create_from_page(http, home: str, name: str):
    csrf = csrf_of(http.get(home).text)
    return http.post("/account/api-keys", data={"name": name, "csrf_token": csrf})


class TestKeysFromThePortal:
    def test_a_client_user_creates_a_key_that_is_shown_once_and_revokes_it(self, http, partner, clock):
        add_user(http, partner, new_client(http, partner, "active"), "user@client.test")
        sign_in(http, "user@client.test", PASSWORD)
        created = create_from_page(http, "/app", "reporting")
        assert created.status_code == 201
        secret = re.search(r'value="(tnt_[^"]+)"', created.text).group(1)
        home = http.get("/app").text
        assert "reporting" in home
        assert secret not in home
        cookies = dict(http.cookies)
        http.cookies.clear()
        assert http.get("/api/1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        http.cookies.update(cookies)
        key_id = re.search(r'action="/account/api-keys/(\d+)/revoke"', home).group(1)
        revoked = http.post(
            f"/account/api-keys/{key_id}/revoke", data={"csrf_token": csrf_of(home)}, follow_redirects=False
        )
        assert revoked.headers["location"] == "/app"
        http.cookies.clear()
        assert http.get("/api/1/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    def test_a_form_without_the_csrf_token_creates_nothing(self, http, partner, clock):
        add_user(http, partner, new_client(http, partner, "active"), "user@client.test")
        sign_in(http, "user@client.test", PASSWORD)
        assert http.post("/account/api-keys", data={"name": "k"}).status_code == 403
        assert "No API keys yet." in http.get("/app").text

    def test_a_user_of_a_disabled_client_gets_no_key(self, http, partner, clock):
        client_id = new_client(http, partner, "active")
        add_user(http, partner, client_id, "user@client.test")
        sign_in(http, "user@client.test", PASSWORD)
        csrf = csrf_of(http.get("/app").text)
        cookies = dict(http.cookies)
        http.cookies.clear()
        set_status(http, partner, client_id, "disabled")
        http.cookies.update(cookies)
        refused = http.post("/account/api-keys", data={"name": "k", "csrf_token": csrf})
        assert refused.status_code == 403
        assert "suspended" in refused.text

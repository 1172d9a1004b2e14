""" "Test connection" of a stored source whose secrets no configured key opens (sealed under a
key the server no longer has): a "*****" standing for one of them is refused naming its field,
and with every secret typed again the test runs, so the source can be repaired. In the console
and in the portal alike."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tenantry.datasources.request import SECRETS_UNREADABLE
from tenantry.db.dashboard_models import DataSource
from tenantry.vault import Vault
from tests.factories import PASSWORD, add_user, client_with_user, csrf_of, new_client, sign_in
from tests.servers import local_http_server

LOST_TOKEN = "tok-lost-4e1d-secret"
TYPED_TOKEN = "tok-typed-9a2c-secret"
TYPED_HEADER = "hdr-typed-31f0-secret"
CSV = "month,sales\nJan,120\nFeb,90\n"


class Seen:
    """What the server was asked: each request's Authorization and X-Api-Key headers."""

    def __init__(self) -> None:
        self.requests: list[tuple[str | None, str | None]] = []


@pytest.fixture
def feed() -> Iterator[tuple[str, Seen]]:
    """A CSV on 127.0.0.1 that answers only `Bearer TYPED_TOKEN` (else 401)."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            seen.requests.append((auth, self.headers.get("X-Api-Key")))
            ok = auth == f"Bearer {TYPED_TOKEN}"
            body = (CSV if ok else "no").encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base + "/sales.csv", seen


def source_with_lost_secrets(http: Any, partner: Any, database: Any, client_id: int, url: str) -> int:
    """A url source with a bearer token and a secret header, whose secrets are then sealed under
    a key this server does not have (as after losing the key they were sealed with)."""
    body = {
        "kind": "url",
        "name": "Sales feed",
        "url": url,
        "format": "csv",
        "headers": {"X-Api-Key": "hdr-lost-secret"},
        "auth": {"type": "bearer", "token": LOST_TOKEN},
    }
    created = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text
    source_id = int(created.json()["id"])
    with database.session(write=True) as db:
        source = db.get(DataSource, source_id)
        assert source is not None
        sealed = {"auth.token": LOST_TOKEN, "headers": {"X-Api-Key": "hdr-lost-secret"}}
        source.secrets = Vault(os.urandom(32)).seal(json.dumps(sealed))
        db.commit()
    return source_id


def form_of(url: str, token: str, header: str) -> dict[str, Any]:
    return {
        "kind": "url",
        "name": "Sales feed",
        "url": url,
        "format": "csv",
        "method": "GET",
        "auth_type": "bearer",
        "auth_token": token,
        "header_name": ["X-Api-Key"],
        "header_value": [header],
    }


def try_connection(http: Any, path: str, page: str, form: dict[str, Any]) -> Any:
    return http.post(path, data={"csrf_token": csrf_of(http.get(page).text), **form})


@pytest.mark.usefixtures("partner_session")
class TestConsoleTestOfASourceWhoseSecretsAreLost:
    def test_a_mask_standing_for_a_lost_secret_is_refused_naming_its_field(
        self, http, partner, database, feed
    ):
        url, seen = feed
        client_id = new_client(http, partner, "trial")
        source_id = source_with_lost_secrets(http, partner, database, client_id, url)
        page = f"/partner/clients/{client_id}"
        path = f"{page}/datasources/test?source={source_id}"
        answer = try_connection(http, path, page, form_of(url, "*****", TYPED_HEADER))
        assert answer.status_code == 422
        assert answer.text.startswith('<p class="error" role="alert">auth.token: ')
        assert SECRETS_UNREADABLE in answer.text and "Send this secret again." in answer.text
        assert "X-Api-Key" not in answer.text  # typed again: not refused
        assert seen.requests == []

    def test_with_every_secret_typed_again_the_test_runs_with_them(self, http, partner, database, feed):
        url, seen = feed
        client_id = new_client(http, partner, "trial")
        source_id = source_with_lost_secrets(http, partner, database, client_id, url)
        page = f"/partner/clients/{client_id}"
        path = f"{page}/datasources/test?source={source_id}"
        answer = try_connection(http, path, page, form_of(url, TYPED_TOKEN, TYPED_HEADER))
        assert answer.status_code == 200, answer.text
        assert "The connection works: 2 rows." in answer.text
        assert seen.requests == [(f"Bearer {TYPED_TOKEN}", TYPED_HEADER)]
        assert TYPED_TOKEN not in answer.text


class TestPortalTestOfASourceWhoseSecretsAreLost:
    def editor_of_a_client(self, http: Any, partner: Any, clock: Any) -> int:
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        add_user(http, partner, client_id, "editor@client.test", role="editor")
        return client_id

    def test_a_mask_standing_for_a_lost_secret_is_refused_naming_its_field(
        self, http, partner, clock, database, feed
    ):
        url, seen = feed
        client_id = self.editor_of_a_client(http, partner, clock)
        source_id = source_with_lost_secrets(http, partner, database, client_id, url)
        sign_in(http, "editor@client.test", PASSWORD)
        path = f"/app/datasources/test?source={source_id}"
        answer = try_connection(http, path, "/app", form_of(url, TYPED_TOKEN, "*****"))
        assert answer.status_code == 422
        assert answer.text.startswith('<p class="error" role="alert">headers.X-Api-Key: ')
        assert SECRETS_UNREADABLE in answer.text
        assert seen.requests == []

    def test_with_every_secret_typed_again_the_test_runs_with_them(
        self, http, partner, clock, database, feed
    ):
        url, seen = feed
        client_id = self.editor_of_a_client(http, partner, clock)
        source_id = source_with_lost_secrets(http, partner, database, client_id, url)
        sign_in(http, "editor@client.test", PASSWORD)
        path = f"/app/datasources/test?source={source_id}"
        answer = try_connection(http, path, "/app", form_of(url, TYPED_TOKEN, TYPED_HEADER))
        assert answer.status_code == 200, answer.text
        assert "The connection works: 2 rows." in answer.text
        assert seen.requests == [(f"Bearer {TYPED_TOKEN}", TYPED_HEADER)]

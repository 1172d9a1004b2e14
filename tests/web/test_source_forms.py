"""The data-source forms of the console's client page and of the portal: one form per kind, a
"Test connection" that fetches once and saves nothing, and secrets that never come back in a page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tests.factories import (
    ADMIN_PASSWORD,
    PASSWORD,
    add_user,
    admin_email,
    client_with_user,
    csrf_of,
    enter,
    new_client,
    post_form,
    sign_in,
)
from tests.servers import local_http_server

TOKEN = "tok-3f9a-very-secret"
HEADER_SECRET = "hdr-77c1-very-secret"
SQL_PASSWORD = "db-pass-5e2b-very-secret"
CSV = "month,sales\nJan,120\nFeb,90\n"


class Seen:
    """What the token-guarded server was asked: each request's path and Authorization header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []


@pytest.fixture
def guarded() -> Iterator[tuple[str, Seen]]:
    """A CSV on 127.0.0.1 that answers only a request carrying `Bearer TOKEN` (else 401)."""
    seen = Seen()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            seen.requests.append((self.path, auth))
            ok = auth == f"Bearer {TOKEN}"
            body = (CSV if ok else "no").encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base, seen


def url_form(url: str, **extra: str) -> dict[str, str]:
    return {"kind": "url", "name": "Sales feed", "url": url, "format": "csv", "method": "GET", **extra}


def sources_of(http: Any, partner: Any, client_id: int) -> list[dict[str, Any]]:
    answer = http.get(f"/api/1/clients/{client_id}/datasources", headers=partner.headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def try_connection(http: Any, path: str, page: str, **form: Any) -> Any:
    """ "Test connection" as htmx sends it: the form's fields and its CSRF token."""
    return http.post(path, data={"csrf_token": csrf_of(http.get(page).text), **form})


@pytest.mark.usefixtures("partner_session")
class TestConsoleTestConnection:
    def test_a_bearer_token_source_shows_its_first_rows_and_nothing_is_saved(self, http, partner, guarded):
        base, seen = guarded
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token=TOKEN)
        answer = try_connection(http, f"{page}/datasources/test", page, **form)
        assert answer.status_code == 200
        assert "The connection works: 2 rows." in answer.text
        assert '<th scope="col">month</th>' in answer.text and "<td>Jan</td>" in answer.text
        assert TOKEN not in answer.text
        assert seen.requests == [("/sales.csv", f"Bearer {TOKEN}")]
        assert sources_of(http, partner, client_id) == []

    def test_a_wrong_token_shows_why_the_connection_failed(self, http, partner, guarded):
        base, _ = guarded
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token="wrong-token-123")
        answer = try_connection(http, f"{page}/datasources/test", page, **form)
        assert "The connection failed: The server refused the credentials (HTTP 401)." in answer.text
        assert "wrong-token-123" not in answer.text

    def test_a_placeholder_takes_the_clients_property_and_a_missing_one_is_named(
        self, http, partner, data_server
    ):
        client_id = new_client(http, partner, "trial")
        data_server.serve("/acme/sales.csv", CSV)
        page = f"/partner/clients/{client_id}"
        form = url_form(data_server.base + "/{{client.prop.account}}/sales.csv")
        missing = try_connection(http, f"{page}/datasources/test", page, **form)
        assert "The client has no property &#39;account&#39;." in missing.text
        put = http.put(
            f"/api/1/clients/{client_id}/properties", json={"account": "acme"}, headers=partner.headers
        )
        assert put.status_code == 200, put.text
        found = try_connection(http, f"{page}/datasources/test", page, **form)
        assert "The connection works: 2 rows." in found.text
        assert data_server.hits == ["/acme/sales.csv"]

    def test_a_malformed_field_is_refused_in_place_naming_it(self, http, partner, data_server):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        answer = try_connection(http, f"{page}/datasources/test", page, **url_form("ftp://example.com/x.csv"))
        assert answer.status_code == 422
        assert answer.text.startswith('<p class="error" role="alert">Url')
        assert data_server.hits == []

    def test_pasted_rows_have_no_connection_to_test(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        answer = try_connection(
            http, f"{page}/datasources/test", page, kind="inline", name="Rows", csv_text="a\n1\n"
        )
        assert answer.status_code == 422
        assert "only a URL or a database can be tested" in answer.text

    def test_without_the_forms_token_nothing_is_fetched(self, http, partner, data_server):
        client_id = new_client(http, partner, "trial")
        url = data_server.serve("/sales.csv", CSV)
        answer = http.post(f"/partner/clients/{client_id}/datasources/test", data=url_form(url))
        assert answer.status_code == 403
        assert data_server.hits == []

    def test_another_partners_client_is_not_found(self, http, partner, make_partner, data_server):
        theirs = new_client(http, make_partner(dashboards=5, users=5, published_links=5), "trial")
        mine = new_client(http, partner, "trial")
        url = data_server.serve("/sales.csv", CSV)
        page = f"/partner/clients/{mine}"
        answer = try_connection(http, f"/partner/clients/{theirs}/datasources/test", page, **url_form(url))
        assert answer.status_code == 404
        assert data_server.hits == []


@pytest.mark.usefixtures("partner_session")
class TestConsoleTestSql:
    def test_a_sql_source_shows_its_querys_rows_with_the_clients_property_bound(
        self, http, partner, postgresql_server, postgresql_reader
    ):
        client_id = new_client(http, partner, "trial")
        put = http.put(
            f"/api/1/clients/{client_id}/properties", json={"account": "x'; --"}, headers=partner.headers
        )
        assert put.status_code == 200, put.text
        page = f"/partner/clients/{client_id}"
        form = {
            "kind": "sql",
            "name": "Orders",
            "engine": "postgresql",
            "host": postgresql_server.host,
            "port": str(postgresql_server.port),
            "database": postgresql_server.database,
            "username": postgresql_reader,
            "password": "",
            "sql": "select {{client.prop.account}}::text as account, n from generate_series(1, 25) as n",
        }
        answer = try_connection(http, f"{page}/datasources/test", page, **form)
        assert "The connection works: 25 rows, the first 20 shown." in answer.text
        assert answer.text.count("<td>x&#39;; --</td>") == 20
        assert sources_of(http, partner, client_id) == []


@pytest.mark.usefixtures("partner_session")
class TestConsoleAddSource:
    def test_a_url_source_keeps_its_secrets_and_the_page_shows_none_of_them(self, http, partner, guarded):
        base, _ = guarded
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        form = url_form(
            base + "/sales.csv",
            auth_type="bearer",
            auth_token=TOKEN,
            header_name=["X-Api-Key", ""],
            header_value=[HEADER_SECRET, ""],
            query_name=["region"],
            query_value=["north"],
            records="",
        )
        answer = post_form(http, f"{page}/datasources", page, **form)
        assert answer.headers["location"] == page
        text = http.get(page).text
        assert "Data source Sales feed added." in text
        assert TOKEN not in text and HEADER_SECRET not in text
        (source,) = sources_of(http, partner, client_id)
        assert source["kind"] == "url"
        assert source["config"]["query"] == {"region": "north"}
        assert TOKEN not in str(source) and HEADER_SECRET not in str(source)

    def test_a_sql_source_is_added_and_its_password_never_shown(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        form = {
            "kind": "sql",
            "name": "Orders",
            "engine": "postgresql",
            "host": "db.example.com",
            "port": "5432",
            "database": "shop",
            "username": "reader",
            "password": SQL_PASSWORD,
            "sql": "select month, sales from sales where account = {{client.prop.account}}",
        }
        post_form(http, f"{page}/datasources", page, **form)
        text = http.get(page).text
        assert "Data source Orders added." in text
        assert SQL_PASSWORD not in text
        (source,) = sources_of(http, partner, client_id)
        assert source["kind"] == "sql"
        assert source["config"]["host"] == "db.example.com"
        assert SQL_PASSWORD not in str(source)

    def test_pasted_rows_are_added_as_before(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        post_form(http, f"{page}/datasources", page, kind="inline", name="Pasted", csv_text=CSV)
        assert "Data source Pasted added." in http.get(page).text
        (source,) = sources_of(http, partner, client_id)
        assert source["row_count"] == 2

    def test_a_header_named_twice_is_refused_in_a_sentence_and_nothing_is_saved(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        form = url_form(
            "https://example.com/sales.csv", header_name=["X-Key", "X-Key"], header_value=["a", "b"]
        )
        post_form(http, f"{page}/datasources", page, **form)
        assert "Header &#39;X-Key&#39; is given twice." in http.get(page).text
        assert sources_of(http, partner, client_id) == []

    def test_a_literal_private_address_is_refused_and_nothing_is_saved(self, http, partner):
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        post_form(http, f"{page}/datasources", page, **url_form("http://10.1.2.3/sales.csv"))
        assert 'class="error"' in http.get(page).text
        assert sources_of(http, partner, client_id) == []

    def test_the_page_offers_a_form_per_kind_with_secret_fields_as_password_inputs(self, http, partner):
        client_id = new_client(http, partner, "trial")
        text = http.get(f"/partner/clients/{client_id}").text
        for kind in ("url", "sql", "inline"):
            assert f'name="kind" value="{kind}"' in text
        assert 'name="auth_token" type="password"' in text
        assert 'name="header_value" type="password"' in text
        assert 'id="source-sql-password" name="password" type="password"' in text
        assert '<option value="xlsx">' in text
        assert f'hx-post="/partner/clients/{client_id}/datasources/test"' in text


def stored_source(http: Any, partner: Any, client_id: int, url: str) -> int:
    """A url source with a bearer token and a secret header, made through the API."""
    body = {
        "kind": "url",
        "name": "Sales feed",
        "url": url,
        "format": "csv",
        "headers": {"X-Api-Key": HEADER_SECRET},
        "auth": {"type": "bearer", "token": TOKEN},
    }
    answer = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


@pytest.mark.usefixtures("partner_session")
class TestConsoleChangeSource:
    def test_stored_secrets_show_as_masks_in_password_inputs(self, http, partner, guarded):
        base, _ = guarded
        client_id = new_client(http, partner, "trial")
        source_id = stored_source(http, partner, client_id, base + "/sales.csv")
        text = http.get(f"/partner/clients/{client_id}").text
        assert TOKEN not in text and HEADER_SECRET not in text
        form = f"source-{source_id}"
        token = re.search(rf'<input id="{form}-token" [^>]*>', text)
        assert token is not None
        assert 'type="password"' in token.group(0) and 'value="*****"' in token.group(0)
        assert 'name="header_value" type="password" maxlength="2000" autocomplete="off" value="*****"' in text

    def test_a_mask_sent_back_tests_and_saves_with_the_stored_secret(self, http, partner, guarded):
        base, seen = guarded
        client_id = new_client(http, partner, "trial")
        source_id = stored_source(http, partner, client_id, base + "/sales.csv")
        page = f"/partner/clients/{client_id}"
        form = url_form(
            base + "/sales.csv",
            name="Sales feed (renamed)",
            auth_type="bearer",
            auth_token="*****",
            header_name=["X-Api-Key"],
            header_value=["*****"],
        )
        tested = try_connection(http, f"{page}/datasources/test?source={source_id}", page, **form)
        assert "The connection works: 2 rows." in tested.text
        assert seen.requests[-1] == ("/sales.csv", f"Bearer {TOKEN}")
        post_form(http, f"{page}/datasources/{source_id}", page, **form)
        assert "Settings of Sales feed (renamed) saved." in http.get(page).text
        again = try_connection(http, f"{page}/datasources/test?source={source_id}", page, **form)
        assert "The connection works: 2 rows." in again.text

    def test_a_mask_without_a_stored_source_is_sent_as_it_is(self, http, partner, guarded):
        base, seen = guarded
        client_id = new_client(http, partner, "trial")
        page = f"/partner/clients/{client_id}"
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token="*****")
        tested = try_connection(http, f"{page}/datasources/test", page, **form)
        assert "HTTP 401" in tested.text
        assert seen.requests == [("/sales.csv", "Bearer *****")]

    def test_another_clients_source_lends_no_secret(self, http, partner, guarded):
        base, seen = guarded
        theirs = new_client(http, partner, "trial")
        source_id = stored_source(http, partner, theirs, base + "/sales.csv")
        mine = new_client(http, partner, "trial")
        page = f"/partner/clients/{mine}"
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token="*****")
        tested = try_connection(http, f"{page}/datasources/test?source={source_id}", page, **form)
        assert tested.status_code == 404
        assert seen.requests == []


@pytest.mark.usefixtures("partner_session")
class TestPartnersOwnSources:
    def test_the_partner_tests_and_adds_a_source_of_its_own(self, http, partner, guarded):
        base, _ = guarded
        page = "/partner/datasources"
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token=TOKEN)
        tested = try_connection(http, f"{page}/test", page, **form)
        assert "The connection works: 2 rows." in tested.text
        post_form(http, page, page, **form)
        text = http.get(page).text
        assert "Data source Sales feed added." in text and TOKEN not in text
        (source,) = http.get("/api/1/partner/datasources", headers=partner.headers).json()["items"]
        assert source["client_id"] is None

    def test_a_client_placeholder_in_a_partners_own_source_is_explained(self, http, partner, data_server):
        page = "/partner/datasources"
        form = url_form(data_server.base + "/{{client.prop.account}}/sales.csv")
        tested = try_connection(http, f"{page}/test", page, **form)
        assert "this source belongs to no client" in tested.text
        assert data_server.hits == []


class TestPortal:
    def test_a_client_editor_adds_and_tests_a_source_in_the_portal(self, http, partner, clock, guarded):
        base, _ = guarded
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        add_user(http, partner, client_id, "editor@client.test", role="editor")
        sign_in(http, "editor@client.test", PASSWORD)
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token=TOKEN)
        tested = try_connection(http, "/app/datasources/test", "/app", **form)
        assert "The connection works: 2 rows." in tested.text
        assert sources_of(http, partner, client_id) == []
        post_form(http, "/app/datasources", "/app", **form)
        text = http.get("/app").text
        assert "Data source Sales feed added." in text and TOKEN not in text
        (source,) = sources_of(http, partner, client_id)
        assert source["client_id"] == client_id

    def test_a_member_sees_no_source_form_and_cannot_add_or_test_one(self, http, partner, clock, data_server):
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        add_user(http, partner, client_id, "member@client.test", role="member")
        sign_in(http, "member@client.test", PASSWORD)
        url = data_server.serve("/sales.csv", CSV)
        assert 'action="/app/datasources"' not in http.get("/app").text
        tested = try_connection(http, "/app/datasources/test", "/app", **url_form(url))
        assert tested.status_code == 403
        post_form(http, "/app/datasources", "/app", **url_form(url))
        assert 'class="error"' in http.get("/app").text
        assert data_server.hits == []
        assert sources_of(http, partner, client_id) == []

    def test_a_partner_in_view_only_mode_cannot_test_a_source(self, http, partner, db, data_server):
        client_id = new_client(http, partner, "trial")
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        enter(http, client_id, "view_only")
        url = data_server.serve("/sales.csv", CSV)
        tested = try_connection(http, "/app/datasources/test", "/app", **url_form(url))
        assert tested.status_code == 403
        assert data_server.hits == []

    def test_a_client_editor_changes_a_source_keeping_its_token_behind_the_mask(
        self, http, partner, clock, guarded
    ):
        base, seen = guarded
        client_id, _, _ = client_with_user(http, partner, clock, "trial", "admin@client.test")
        add_user(http, partner, client_id, "editor@client.test", role="editor")
        source_id = stored_source(http, partner, client_id, base + "/sales.csv")
        sign_in(http, "editor@client.test", PASSWORD)
        text = http.get("/app").text
        assert TOKEN not in text and HEADER_SECRET not in text
        assert f'action="/app/datasources/{source_id}"' in text
        form = url_form(
            base + "/sales.csv",
            name="Renamed feed",
            auth_type="bearer",
            auth_token="*****",
            header_name=["X-Api-Key"],
            header_value=["*****"],
        )
        tested = try_connection(http, f"/app/datasources/test?source={source_id}", "/app", **form)
        assert "The connection works: 2 rows." in tested.text
        assert seen.requests[-1] == ("/sales.csv", f"Bearer {TOKEN}")
        post_form(http, f"/app/datasources/{source_id}", "/app", **form)
        assert "Settings of Renamed feed saved." in http.get("/app").text

    def test_another_clients_source_is_not_found_from_the_portal(self, http, partner, clock, guarded):
        base, seen = guarded
        other = new_client(http, partner, "trial")
        theirs = stored_source(http, partner, other, base + "/sales.csv")
        client_with_user(http, partner, clock, "trial", "admin@client.test")
        sign_in(http, "admin@client.test", PASSWORD)
        form = url_form(base + "/sales.csv", auth_type="bearer", auth_token="*****")
        tested = try_connection(http, f"/app/datasources/test?source={theirs}", "/app", **form)
        assert tested.status_code == 404
        post_form(http, f"/app/datasources/{theirs}", "/app", **{**form, "name": "Stolen"})
        assert 'class="error"' in http.get("/app").text
        (source,) = sources_of(http, partner, other)
        assert source["name"] == "Sales feed"
        assert seen.requests == []

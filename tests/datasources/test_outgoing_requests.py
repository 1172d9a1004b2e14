"""A `url` data source cannot be aimed at the server's own network (SPEC §12 "Outgoing requests").

Each test repeats an attack through the API, with the guard as it ships (no private destination
allowed): an internal service on 127.0.0.1 stands for whatever the server can reach and the
Internet cannot. Nothing of it may be read back through `/rows` or `last_error`.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tenantry.outbound import AllowList, Guard
from tests.content import client_key, make_client
from tests.factories import ADMIN_PASSWORD, admin_email, csrf_of, sign_in
from tests.servers import free_port, port_of

SECRET = "internal,secret\nsalary,100000\n"


def url_source(http, headers, client_id, url):
    body = {"name": "Remote", "kind": "url", "url": url, "format": "csv"}
    return http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=headers)


def source_of(http, partner, source_id):
    return http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()


def rows_of(http, partner, source_id):
    return http.get(f"/api/1/datasources/{source_id}/rows", headers=partner.headers).json()["items"]


SPELLINGS = [
    "http://127.0.0.1:{port}/secret.csv",
    "http://127.1:{port}/secret.csv",
    "http://2130706433:{port}/secret.csv",
    "http://0177.0.0.1:{port}/secret.csv",
    "http://0x7f000001:{port}/secret.csv",
    "http://[::ffff:127.0.0.1]:{port}/secret.csv",
    "http://[::1]:{port}/secret.csv",
    "http://0.0.0.0:{port}/secret.csv",
    "http://evil@127.0.0.1:{port}/secret.csv",
    "http://user:pass@example.com/data.csv",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/data.csv",
    "http://100.64.0.1/data.csv",
]


class TestRefusedAtCreation:
    @pytest.mark.parametrize("spelling", SPELLINGS)
    @pytest.mark.parametrize("who", ["partner editor", "client admin"])
    def test_an_internal_address_in_any_spelling_or_user_information_is_refused_and_nothing_is_created(
        self, guarded_http, partner, db, clock, data_server, spelling, who
    ):
        http = guarded_http
        client_id = make_client(http, partner, "active")
        headers = (
            partner.headers
            if who == "partner editor"
            else client_key(db, clock, partner, client_id, "admin")[1]
        )
        url = spelling.format(port=port_of(data_server.serve("/secret.csv", SECRET)))
        response = url_source(http, headers, client_id, url)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        problem = response.json()
        assert problem["code"] == "validation_error"
        assert problem["errors"][0]["loc"] == ["body", "url"]
        listed = http.get(f"/api/1/clients/{client_id}/datasources", headers=partner.headers).json()
        assert listed["total"] == 0
        assert data_server.hits == []

    def test_a_setup_clients_source_is_refused_the_same(self, guarded_http, partner, data_server):
        client_id = make_client(guarded_http, partner, "setup")
        url = f"http://127.1:{port_of(data_server.serve('/secret.csv', SECRET))}/secret.csv"
        assert url_source(guarded_http, partner.headers, client_id, url).status_code == 422

    def test_changing_a_sources_url_to_an_internal_address_is_refused_and_changes_nothing(
        self, guarded_http, partner, data_server
    ):
        http = guarded_http
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner.headers, client_id, "https://example.com/data.csv").json()["id"]
        url = f"http://0x7f000001:{port_of(data_server.serve('/secret.csv', SECRET))}/secret.csv"
        response = http.patch(
            f"/api/1/datasources/{source_id}", json={"url": url, "name": "Renamed"}, headers=partner.headers
        )
        assert response.status_code == 422
        assert response.json()["code"] == "validation_error"
        unchanged = source_of(http, partner, source_id)
        assert (unchanged["url"], unchanged["name"]) == ("https://example.com/data.csv", "Remote")

    def test_the_console_form_refuses_it_too(self, guarded_http, partner, db, data_server):
        http = guarded_http
        client_id = make_client(http, partner, "active")
        sign_in(http, admin_email(db, partner), ADMIN_PASSWORD)
        page = f"/partner/clients/{client_id}"
        url = f"http://127.1:{port_of(data_server.serve('/secret.csv', SECRET))}/secret.csv"
        form = {
            "csrf_token": csrf_of(http.get(page).text),
            "name": "S",
            "kind": "url",
            "url": url,
            "format": "csv",
        }
        http.post(f"{page}/datasources", data=form, follow_redirects=False)
        listed = http.get(f"/api/1/clients/{client_id}/datasources", headers=partner.headers).json()
        assert listed["total"] == 0


class TestRefusedAtFetch:
    def test_a_name_that_resolves_to_loopback_fails_with_address_not_allowed_and_nothing_is_read(
        self, guarded_http, partner, data_server, make_worker
    ):
        http = guarded_http
        client_id = make_client(http, partner, "active")
        url = f"http://localhost:{port_of(data_server.serve('/secret.csv', SECRET))}/secret.csv"
        created = url_source(http, partner.headers, client_id, url)
        assert created.status_code == 201, created.text
        make_worker(guard=Guard()).run_once()
        source = source_of(http, partner, created.json()["id"])
        assert source["last_error"] == "address not allowed"
        assert rows_of(http, partner, created.json()["id"]) == []
        assert data_server.hits == []

    def test_a_public_host_that_redirects_to_loopback_is_not_followed(
        self, settings, clock, database, partner, data_server, make_worker
    ):
        from fastapi.testclient import TestClient

        from tenantry.app import create_app

        internal = data_server.serve("/secret.csv", SECRET)
        with redirecting_server("127.0.0.2", internal) as public:
            # 127.0.0.2 is opened on purpose: here it stands for a public host.
            opened = settings.model_copy(update={"outbound_allow": "127.0.0.2"})
            with TestClient(create_app(opened, clock=clock, database=database)) as http:
                client_id = make_client(http, partner, "active")
                created = url_source(http, partner.headers, client_id, public.url)
                assert created.status_code == 201, created.text
                make_worker(guard=Guard(AllowList.parse("127.0.0.2"))).run_once()
                source = source_of(http, partner, created.json()["id"])
                rows = rows_of(http, partner, created.json()["id"])
        assert public.hits == 1
        assert source["last_error"] == "address not allowed"
        assert rows == []
        assert data_server.hits == []

    def test_closed_open_and_forbidden_internal_ports_all_read_the_same(
        self, guarded_http, partner, data_server, make_worker
    ):
        """No port scan through `last_error`: whatever is (or is not) listening, one answer."""
        http = guarded_http
        client_id = make_client(http, partner, "active")
        closed = free_port()
        open_url = data_server.serve("/open.csv", SECRET)
        forbidden_url = data_server.serve("/forbidden.csv", "no", status=403)
        ids = [
            url_source(http, partner.headers, client_id, f"http://localhost:{port}/{path}").json()["id"]
            for port, path in (
                (closed, "x.csv"),
                (port_of(open_url), "open.csv"),
                (port_of(forbidden_url), "forbidden.csv"),
            )
        ]
        make_worker(guard=Guard()).run_once()
        assert [source_of(http, partner, i)["last_error"] for i in ids] == ["address not allowed"] * 3
        assert data_server.hits == []


class _Redirecting:
    def __init__(self, url: str) -> None:
        self.url, self.hits = url, 0


class redirecting_server:
    """A server on `host` that answers every GET with a 302 to `target`."""

    def __init__(self, host: str, target: str) -> None:
        self.host, self.target = host, target

    def __enter__(self) -> _Redirecting:
        state = _Redirecting("")
        target = self.target

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state.hits += 1
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        state.url = f"http://{self.host}:{self.server.server_address[1]}/data.csv"
        return state

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

"""URL sources whose answers or settings no parser takes as they are: a next-page link no URL
parser reads, a POST body nested deeper than the JSON parser goes, a client value of dots in a
path. Each fails the fetch with its sentence, or is sent as it is, never crashing the refresh
(which the worker would then take up again at every lease)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from tenantry.datasources.fetch import FetchError, fetch_source
from tenantry.datasources.placeholders import Context
from tenantry.datasources.request import SourceRequest
from tenantry.outbound import AllowList, Guard
from tests.content import make_client
from tests.servers import local_http_server

LOOPBACK = Guard(AllowList.parse("127.0.0.1"))
# A next-page link no URL parser accepts (an IPv6 host whose bracket is never closed).
BROKEN_NEXT = '<http://[::1/orders?page=2>; rel="next"'


@pytest.fixture
def paged_api() -> Iterator[str]:
    """A JSON API whose first page names a next page with a link no parser can read."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps([{"n": 1}, {"n": 2}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Link", BROKEN_NEXT)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base


def test_a_next_page_link_no_parser_reads_is_a_fetch_error(paged_api: str) -> None:
    request = SourceRequest(
        kind="url", url=paged_api + "/orders", format="json", paginate={"type": "link_header"}
    )
    with pytest.raises(FetchError, match=r"^The URL is malformed\.$"):
        fetch_source(request, guard=LOOPBACK, timeout=5)


def test_a_refresh_that_meets_a_broken_next_link_records_its_error_instead_of_crashing(  # type: ignore[no-untyped-def]
    http, partner, worker, paged_api: str
) -> None:
    client_id = make_client(http, partner, "active")
    body = {
        "name": "Orders",
        "kind": "url",
        "url": paged_api + "/orders",
        "format": "json",
        "paginate": {"type": "link_header"},
    }
    created = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text
    source_id = created.json()["id"]

    worker.run_once()

    source = http.get(f"/api/1/datasources/{source_id}", headers=partner.headers).json()
    assert source["last_error"] == "The URL is malformed."
    assert source["refresh_fail_count"] == 1
    assert source["refresh_requested_at"] is None


@pytest.fixture
def post_api() -> Iterator[list[tuple[str, bytes]]]:
    """A JSON API answering every POST with two rows; records (Content-Type, body) of each."""
    seen: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            seen.append((self.headers.get("Content-Type", ""), raw))
            body = json.dumps([{"n": 1}, {"n": 2}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        seen.insert(0, ("base", base.encode()))
        yield seen


# A body the schema accepts (100,000 characters at most) that only looks like the start of JSON.
DEEP_BODY = "[" * 5000


def test_a_post_body_nested_deeper_than_the_json_parser_goes_is_sent_as_text(
    post_api: list[tuple[str, bytes]],
) -> None:
    base = post_api.pop(0)[1].decode()
    request = SourceRequest(kind="url", url=base + "/q", format="json", method="POST", body=DEEP_BODY)
    assert fetch_source(request, guard=LOOPBACK, timeout=5) == [{"n": 1}, {"n": 2}]
    assert post_api == [("text/plain; charset=utf-8", DEEP_BODY.encode())]


def test_a_stored_post_source_with_a_deeply_nested_body_is_refreshed_by_the_worker(  # type: ignore[no-untyped-def]
    http, partner, worker, post_api: list[tuple[str, bytes]]
) -> None:
    base = post_api.pop(0)[1].decode()
    client_id = make_client(http, partner, "active")
    body = {
        "name": "Q",
        "kind": "url",
        "url": base + "/q",
        "format": "json",
        "method": "POST",
        "body": DEEP_BODY,
    }
    created = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text

    worker.run_once()

    source = http.get(f"/api/1/datasources/{created.json()['id']}", headers=partner.headers).json()
    assert (source["last_error"], source["row_count"], source["refresh_fail_count"]) == (None, 2, 0)


@pytest.fixture
def recording_api() -> Iterator[tuple[str, list[str]]]:
    """A JSON API answering every GET with one row; records the raw path of each request."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = json.dumps([{"n": 1}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base, paths


@pytest.mark.parametrize(
    ("value", "path"), [("..", "/accounts/%2E%2E/orders"), (".", "/accounts/%2E/orders")]
)
def test_a_client_value_of_dots_stays_one_path_segment_of_the_url_it_is_in(
    recording_api: tuple[str, list[str]], value: str, path: str
) -> None:
    # `/accounts/../orders` would be requested as `/orders`: every account's orders, with the
    # partner's credentials.
    base, paths = recording_api
    request = SourceRequest(
        kind="url",
        url=base + "/accounts/{{client.external_id}}/orders",
        format="json",
        context=Context(7, value, "Acme", {}),
    )
    assert fetch_source(request, guard=LOOPBACK, timeout=5) == [{"n": 1}]
    assert paths == [path]

"""URL sources whose answers or settings no parser takes as they are: a next-page link no URL
parser reads, a POST body nested deeper than the JSON parser goes, a client value of dots in a
path. Each fails the fetch with its sentence, or is sent as it is, never crashing the refresh
(which the worker would then take up again at every lease)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tenantry.datasources.fetch import FetchError, fetch_source
from tenantry.datasources.placeholders import Context
from tenantry.datasources.request import SourceRequest
from tenantry.outbound import AllowList, Guard
from tests.content import make_client
from tests.servers import DataServer

LOOPBACK = Guard(AllowList.parse("127.0.0.1"))
TWO_ROWS = json.dumps([{"n": 1}, {"n": 2}])
# A next-page link no URL parser accepts (an IPv6 host whose bracket is never closed).
BROKEN_NEXT = '<http://[::1/orders?page=2>; rel="next"'
# A body the schema accepts (100,000 characters at most) that only looks like the start of JSON.
DEEP_BODY = "[" * 5000


def refreshed(http: Any, partner: Any, worker: Any, **source: Any) -> dict[str, Any]:
    """A client's URL source, as it stands after the worker's first refresh."""
    client_id = make_client(http, partner, "active")
    body = {"name": "Source", "kind": "url", "format": "json", **source}
    created = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text
    worker.run_once()
    return http.get(f"/api/1/datasources/{created.json()['id']}", headers=partner.headers).json()  # type: ignore[no-any-return]


def broken_pages(data_server: DataServer) -> str:
    """A JSON API whose first page names a next page with a link no parser can read."""
    return data_server.serve("/orders", TWO_ROWS, "application/json", headers={"Link": BROKEN_NEXT})


def test_a_next_page_link_no_parser_reads_is_a_fetch_error(data_server: DataServer) -> None:
    request = SourceRequest(
        kind="url", url=broken_pages(data_server), format="json", paginate={"type": "link_header"}
    )
    with pytest.raises(FetchError, match=r"^The URL is malformed\.$"):
        fetch_source(request, guard=LOOPBACK, timeout=5)


def test_a_refresh_that_meets_a_broken_next_link_records_its_error_instead_of_crashing(  # type: ignore[no-untyped-def]
    http, partner, worker, data_server: DataServer
) -> None:
    source = refreshed(http, partner, worker, url=broken_pages(data_server), paginate={"type": "link_header"})
    assert source["last_error"] == "The URL is malformed."
    assert source["refresh_fail_count"] == 1
    assert source["refresh_requested_at"] is None


def test_a_post_body_nested_deeper_than_the_json_parser_goes_is_sent_as_text(data_server: DataServer) -> None:
    url = data_server.serve("/q", TWO_ROWS, "application/json")
    request = SourceRequest(kind="url", url=url, format="json", method="POST", body=DEEP_BODY)
    assert fetch_source(request, guard=LOOPBACK, timeout=5) == [{"n": 1}, {"n": 2}]
    assert data_server.posted == [("text/plain; charset=utf-8", DEEP_BODY.encode())]


def test_a_stored_post_source_with_a_deeply_nested_body_is_refreshed_by_the_worker(  # type: ignore[no-untyped-def]
    http, partner, worker, data_server: DataServer
) -> None:
    url = data_server.serve("/q", TWO_ROWS, "application/json")
    source = refreshed(http, partner, worker, url=url, method="POST", body=DEEP_BODY)
    assert (source["last_error"], source["row_count"], source["refresh_fail_count"]) == (None, 2, 0)


@pytest.mark.parametrize(
    ("value", "path"), [("..", "/accounts/%2E%2E/orders"), (".", "/accounts/%2E/orders")]
)
def test_a_client_value_of_dots_stays_one_path_segment_of_the_url_it_is_in(
    data_server: DataServer, value: str, path: str
) -> None:
    # `/accounts/../orders` would be requested as `/orders`: every account's orders, with the
    # partner's credentials.
    data_server.serve(path, json.dumps([{"n": 1}]), "application/json")
    request = SourceRequest(
        kind="url",
        url=data_server.base + "/accounts/{{client.external_id}}/orders",
        format="json",
        context=Context(7, value, "Acme", {}),
    )
    assert fetch_source(request, guard=LOOPBACK, timeout=5) == [{"n": 1}]
    assert data_server.hits == [path]

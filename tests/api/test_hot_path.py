"""The lean routes' requests are answered by `RequestMiddleware`'s hot path (`api.lean.HotPath`),
without the layers below it, exactly as the whole stack answers them: status, headers (rate-limit
and security headers included) and body, refusals and faults included."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.api.lean import HotPath
from tenantry.api.middleware import RequestMiddleware
from tenantry.app import create_app
from tests.content import dashboard_in, path_of, publish
from tests.factories import client_with_user, set_status

STATUSES = ["trial", "trial_expired", "active", "disabled"]


def without_hot_path(app: Any) -> Any:
    for middleware in app.user_middleware:
        if middleware.cls is RequestMiddleware:
            middleware.kwargs["hot"] = None
    return app


def seen(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The answer, but for what differs from one request to the next: the request id, and the
    counts of a metered caller's calls (each call moves them on by one)."""
    headers = [
        (
            name,
            re.sub(r"r=\d+|^\d+$", "N", value) if name in ("ratelimit", "x-ratelimit-remaining") else value,
        )
        for name, value in response.headers.multi_items()
        if name != "x-request-id"
    ]
    body = re.sub(rb'"api_calls_today":\d+', b'"api_calls_today":N', response.content)
    return response.status_code, headers, body


@pytest.fixture
def both(settings, clock, database):  # type: ignore[no-untyped-def]
    with (
        TestClient(
            create_app(settings, clock=clock, database=database), raise_server_exceptions=False
        ) as hot,
        TestClient(
            without_hot_path(create_app(settings, clock=clock, database=database)),
            raise_server_exceptions=False,
        ) as whole,
    ):
        yield hot, whole


@pytest.mark.parametrize("status", STATUSES)
def test_a_client_and_me_answer_through_the_hot_path_as_through_the_whole_stack(both, partner, clock, status):
    hot, whole = both
    client_id, _, client_key = client_with_user(hot, partner, clock, status, f"{status}@client.test")
    asked = [
        (f"/api/1/clients/{client_id}", partner.headers),
        (f"/api/1/clients/{client_id}", client_key),  # a client key reading its own client: metered
        (f"/api/1/clients/{client_id + 1000}", partner.headers),  # no such client: 404
        (f"/api/1/clients/{client_id + 1000}", client_key),  # not its own: 404 too
        ("/api/1/me", client_key),
        ("/api/1/me", partner.headers),
        ("/api/1/me", {"Authorization": "Bearer tnt_not_a_key"}),  # 401
        ("/api/1/me", {}),  # no credential: 401
        ("/api/1/clients/abc", partner.headers),  # a path id FastAPI refuses: down the stack, 422
    ]
    for path, headers in asked:
        through_hot, through_whole = hot.get(path, headers=headers), whole.get(path, headers=headers)
        assert seen(through_hot) == seen(through_whole), (status, path)


def test_a_request_id_sent_is_the_one_answered_through_the_hot_path(both, partner):
    hot, _ = both
    answered = hot.get("/api/1/me", headers={**partner.headers, "X-Request-Id": "caller-chosen-id-42"})
    assert answered.headers["x-request-id"] == "caller-chosen-id-42"


def without_nonce(
    answer: tuple[int, list[tuple[str, str]], bytes],
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A page's answer but for its nonce, new in each answer."""
    status, headers, body = answer
    nonce = re.compile(r"nonce-[A-Za-z0-9_-]+")
    return (
        status,
        [(name, nonce.sub("nonce-N", value)) for name, value in headers],
        re.sub(rb'nonce="[A-Za-z0-9_-]+"', b'nonce="N"', body),
    )


def test_a_published_page_answers_through_the_hot_path_as_through_the_whole_stack(both, partner, clock):
    hot, whole = both
    client_id, _, board = dashboard_in(hot, partner, "active", clock)
    open_link = path_of(publish(hot, partner, board, allowed_origins=["https://shop.example"]).json())
    locked = path_of(publish(hot, partner, board, password="correct horse battery").json())
    asked = [
        open_link,
        open_link + "?f.nothing=1",  # an unknown filter is ignored
        locked,  # the password form: 401
        "/published/" + "x" * 43,  # no such link: 404
    ]
    for path in asked:
        assert without_nonce(seen(hot.get(path))) == without_nonce(seen(whole.get(path))), path
    set_status(hot, partner, client_id, "disabled")
    closed_hot, closed_whole = hot.get(open_link), whole.get(open_link)
    assert closed_hot.status_code == 403  # a Disabled client's links are closed
    assert without_nonce(seen(closed_hot)) == without_nonce(seen(closed_whole))


def test_the_hot_path_answers_the_lean_routes_and_only_them(both, partner, monkeypatch):
    hot, _ = both
    served: list[str] = []
    serve = HotPath.serve

    async def counted(self, found, scope, receive, send):  # type: ignore[no-untyped-def]
        served.append(scope["path"])
        await serve(self, found, scope, receive, send)

    monkeypatch.setattr(HotPath, "serve", counted)
    client_id = hot.post("/api/1/clients", json={"name": "C"}, headers=partner.headers).json()["id"]
    for path in (
        f"/api/1/clients/{client_id}",
        "/api/1/me",
        f"/api/1/clients/{client_id}/users",
        "/api/1/clients",
    ):
        assert hot.get(path, headers=partner.headers).status_code == 200, path
    assert hot.put("/api/1/me", headers=partner.headers).status_code == 405  # not a lean route's method
    token = "x" * 43
    for path in (f"/published/{token}", f"/published/{token}/live"):
        assert hot.get(path).status_code == 404, path
    assert hot.post(f"/published/{token}", data={"password": "p"}).status_code == 404  # not the page's method
    assert served == [f"/api/1/clients/{client_id}", "/api/1/me", f"/published/{token}"]


def test_a_fault_in_a_hot_route_is_answered_as_any_route_s_fault(app, http, partner, monkeypatch):
    from tenantry.api.lean import LeanRoute

    lean = next(
        route for route in app.router.routes if isinstance(route, LeanRoute) and route.path == "/api/1/me"
    )

    async def broken(**_: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(lean, "endpoint", broken)
    failed = http.get("/api/1/me", headers=partner.headers)
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/problem+json"
    assert failed.json()["code"] == "internal_error"
    assert failed.headers["x-request-id"] and failed.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("hot_path", [True, False], ids=["through the hot path", "down the whole stack"])
def test_a_published_page_is_counted_under_its_template(settings, clock, database, hot_path):
    """The plain routes the route index finds (a published page is one) are named in the metrics
    by their template, as the router names them, not counted as unmatched."""
    from prometheus_client import REGISTRY

    def served() -> float:
        labels = {"method": "GET", "route": "/published/{token}", "status": "404"}
        return REGISTRY.get_sample_value("tenantry_http_requests_total", labels) or 0.0

    app = create_app(settings, clock=clock, database=database)
    with TestClient(app if hot_path else without_hot_path(app)) as http:
        before = served()
        assert http.get("/published/" + "x" * 43).status_code == 404
        assert served() == before + 1


def test_a_page_response_is_what_an_html_response_with_the_page_s_headers_is():
    from starlette.responses import HTMLResponse

    from tenantry.links.web import _COMMON, PageResponse, page_policy

    for status, origins in ((200, None), (401, ["https://shop.example"]), (422, [])):
        page = PageResponse(b"<p>hi</p>", status, "n0nce", origins)
        headers = {**_COMMON, "Content-Security-Policy": page_policy("n0nce", origins)}
        html = HTMLResponse(b"<p>hi</p>", status_code=status, headers=headers)
        assert (page.status_code, page.raw_headers, page.body) == (
            html.status_code,
            html.raw_headers,
            html.body,
        )


def test_hot_templates_may_share_a_parameter_name(app):
    from tenantry.api.deps import KeyCompanions

    paths = ("/a/{item_id}", "/b/{item_id}")
    hot = HotPath(app, paths=paths, hosts=app.state.hosts, companions=KeyCompanions())
    scope = {"type": "http", "method": "GET", "path": "/c/1", "headers": []}
    assert hot.find(scope) is None  # neither template: not looked up among the routes

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
from tests.factories import client_with_user

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
    assert hot.head("/api/1/me", headers=partner.headers).status_code == 405  # not a lean route's method
    assert served == [f"/api/1/clients/{client_id}", "/api/1/me"]


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

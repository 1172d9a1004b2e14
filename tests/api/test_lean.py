"""The hottest reads answer through lean routes (`api.lean`) exactly as FastAPI's routes would."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import APIRouter, Query, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tenantry.api.lean import LeanRoute
from tenantry.api.route_index import RouteIndex, index_routes
from tenantry.app import LEAN_ROUTES, create_app
from tests.factories import client_with_user, new_client

STATUSES = ["trial", "trial_expired", "active", "disabled"]


def without_lean_routes(app: Any) -> Any:
    app.router.routes[:] = declared_routes(app)
    index_routes(app.router.routes)
    return app


def declared_routes(app: Any) -> list[Any]:
    """The app's routes as declared: no lean route, and no index (which holds the lean ones)."""
    return [route for route in app.router.routes if not isinstance(route, (LeanRoute, RouteIndex))]


def answer(response: Any) -> tuple[int, str | None, bytes]:
    # A client key's own call is counted before it is answered: the count moves on by one.
    body = re.sub(rb'"api_calls_today":\d+', b'"api_calls_today":N', response.content)
    return response.status_code, response.headers.get("content-type"), body


def test_each_lean_route_stands_in_front_of_its_declared_route(app):
    routes = app.router.routes
    for method, path in LEAN_ROUTES:
        index = next(i for i, r in enumerate(routes) if isinstance(r, LeanRoute) and r.path == path)
        assert isinstance(routes[index + 1], APIRoute) and routes[index + 1].path == path
        assert routes[index].api_route is routes[index + 1] and routes[index].methods == {method}
    documented = app.openapi()["paths"]
    assert all(path in documented for _, path in LEAN_ROUTES)  # the documentation is unchanged


@pytest.mark.parametrize("status", STATUSES)
def test_a_client_and_me_answer_byte_for_byte_as_fastapi_would(app, http, partner, clock, status):
    client_id, _, client_key = client_with_user(http, partner, clock, status, f"{status}@client.test")
    lean = list(app.router.routes)
    declared = declared_routes(app)
    asked = [
        (f"/api/1/clients/{client_id}", partner.headers),
        ("/api/1/me", client_key),  # metered: the count in its headers moves on, its body does not
        ("/api/1/me", partner.headers),
        (f"/api/1/clients/{client_id + 1000}", partner.headers),  # no such client: 404
        (f"/api/1/clients/{client_id}", client_key),  # a client key reading its own client
    ]
    for path, headers in asked:
        app.router.routes[:] = lean
        through_lean = http.get(path, headers=headers)
        app.router.routes[:] = declared
        through_fastapi = http.get(path, headers=headers)
        assert answer(through_lean)[:3] == answer(through_fastapi)[:3], path


@pytest.mark.parametrize("raw", ["abc", "1.5", "99999999999999999999", "-", "%20"])
def test_a_path_id_fastapi_refuses_gets_fastapis_own_422(settings, clock, database, partner, raw):
    path = f"/api/1/clients/{raw}"
    with TestClient(create_app(settings, clock=clock, database=database)) as http:
        lean = http.get(path, headers=partner.headers)
    with TestClient(without_lean_routes(create_app(settings, clock=clock, database=database))) as http:
        declared = http.get(path, headers=partner.headers)
    assert lean.status_code == declared.status_code == 422
    assert lean.json() == declared.json()
    assert "client_id" in lean.text


@pytest.mark.parametrize("method", ["PUT", "POST", "OPTIONS"])
def test_a_method_the_route_does_not_take_is_refused_as_fastapi_would(app, http, partner, method):
    client_id = new_client(http, partner, "active")
    lean = list(app.router.routes)
    declared = declared_routes(app)
    for path in (f"/api/1/clients/{client_id}", "/api/1/me"):
        app.router.routes[:] = lean
        through_lean = http.request(method, path, headers=partner.headers)
        app.router.routes[:] = declared
        through_fastapi = http.request(method, path, headers=partner.headers)
        assert through_lean.status_code == through_fastapi.status_code == 405, (method, path)
        assert through_lean.content == through_fastapi.content
        assert through_lean.headers.get("allow") == through_fastapi.headers.get("allow")


def test_a_head_is_answered_as_fastapi_answers_its_get_without_the_body(app, http, partner):
    client_id = new_client(http, partner, "active")
    lean = list(app.router.routes)
    declared = declared_routes(app)
    for path in (f"/api/1/clients/{client_id}", "/api/1/me", f"/api/1/clients/{client_id + 1000}"):
        app.router.routes[:] = lean
        through_lean = http.head(path, headers=partner.headers)
        app.router.routes[:] = declared
        through_fastapi = http.get(path, headers=partner.headers)
        assert through_lean.status_code == through_fastapi.status_code, path
        assert through_lean.content == b""
        assert through_lean.headers["content-length"] == str(len(through_fastapi.content))


def test_requests_answered_by_a_lean_route_are_counted_under_the_declared_template(http, partner):
    def served() -> float:
        labels = {"method": "GET", "route": "/api/1/me", "status": "200"}
        return REGISTRY.get_sample_value("tenantry_http_requests_total", labels) or 0.0

    before = served()
    assert http.get("/api/1/me", headers=partner.headers).status_code == 200
    assert served() == before + 1


def test_an_endpoint_with_anything_but_path_parameters_cannot_be_made_lean():
    router = APIRouter()

    @router.get("/things/{thing_id}", response_model=dict[str, int])
    async def thing(thing_id: int, request: Request, page: int = Query(1)) -> dict[str, int]:
        return {"id": thing_id, "page": page}

    @router.get("/bare/{thing_id}", response_model=None)
    async def bare(thing_id: int, request: Request) -> Any:
        return {"id": thing_id}

    @router.get("/sync/{thing_id}", response_model=dict[str, int])
    def sync(thing_id: int, request: Request) -> dict[str, int]:
        return {"id": thing_id}

    with_query, without_model, not_a_coroutine = router.routes
    assert all(isinstance(route, APIRoute) for route in router.routes)
    for route in (with_query, without_model, not_a_coroutine):
        with pytest.raises(ValueError, match="coroutine that takes only path parameters"):
            LeanRoute(route)

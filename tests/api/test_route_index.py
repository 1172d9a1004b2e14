"""The route index (`api.route_index`) finds, for every request, the route the whole list of routes
would have found first, or leaves the request to the list."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Host, Match, Mount, Route

from tenantry.api.route_index import RouteIndex, index_routes
from tenantry.app import create_app


def first_match(routes: list[BaseRoute], scope: dict[str, Any]) -> BaseRoute | None:
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def indexed(index: RouteIndex, scope: dict[str, Any]) -> BaseRoute | None:
    match, child_scope = index.matches(dict(scope))
    return child_scope["tenantry.route_index"] if match is Match.FULL else None


def scope_of(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def concrete(template: str) -> str:
    return re.sub(r"\{[^}:]+(:path)?\}", lambda m: "a/b" if m.group(1) else "7", template)


def endpoint(name: str) -> Any:
    async def answer(request: Any) -> PlainTextResponse:
        return PlainTextResponse(name)

    return answer


def test_every_route_of_the_app_is_found_as_the_list_finds_it(settings, clock, database):
    app = create_app(settings, clock=clock, database=database)
    index, *routes = app.router.routes
    assert isinstance(index, RouteIndex) and not any(isinstance(r, RouteIndex) for r in routes)
    asked = []
    for route in routes:
        path = getattr(route, "path", None)
        if path is None:
            continue
        path = concrete(path) + ("/app.css" if isinstance(route, Mount) else "")
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            asked += [(method, path), (method, path + "/"), (method, path + "/more"), ("PUT", path)]
    asked += [("GET", "/"), ("GET", "/nowhere"), ("GET", "/api/1/nowhere"), ("GET", ""), ("GET", "//x")]
    found = 0
    for method, path in asked:
        scope = scope_of(method, path)
        expected = first_match(routes, scope)
        assert indexed(index, scope) is expected, (method, path)
        found += expected is not None
    assert found > len(routes)  # most of the asked paths reach a route: the comparison is not empty


def test_a_route_whose_first_segment_is_a_parameter_keeps_its_place():
    first, anywhere = Route("/a/x", endpoint("first")), Route("/{any}/x", endpoint("any"))
    last = Route("/a/{y}", endpoint("last"))
    index = RouteIndex([first, anywhere, last])
    assert indexed(index, scope_of("GET", "/a/x")) is first
    assert indexed(index, scope_of("GET", "/b/x")) is anywhere
    assert indexed(index, scope_of("GET", "/a/z")) is last
    earlier = RouteIndex([anywhere, first])
    assert indexed(earlier, scope_of("GET", "/a/x")) is anywhere  # it came first in the list


def test_routes_are_told_apart_by_their_leading_segments_in_the_lists_order():
    parameter_last = Route("/a/b/{x}", endpoint("x"))
    parameter_between = Route("/a/{y}/c", endpoint("y"))
    literal = Route("/a/b/c", endpoint("c"))
    short = Route("/a", endpoint("a"))
    index = RouteIndex([parameter_last, parameter_between, literal, short])
    assert indexed(index, scope_of("GET", "/a/b/c")) is parameter_last  # first in the list
    assert indexed(index, scope_of("GET", "/a/z/c")) is parameter_between
    assert indexed(index, scope_of("GET", "/a")) is short
    assert indexed(index, scope_of("GET", "/a/b")) is None
    for n in range(5000):  # more distinct paths than the index keeps lists for: still right
        assert indexed(index, scope_of("GET", f"/a/{n}/c")) is parameter_between
    assert indexed(index, scope_of("GET", "/a/b/d")) is parameter_last


def test_a_path_asked_again_gets_the_same_route_and_parameters_in_a_scope_of_its_own():
    other, numbered = Route("/a/{n:int}/b", endpoint("b")), Route("/a/{n:int}", endpoint("n"))
    index = RouteIndex([other, numbered])
    first = index.matches(scope_of("GET", "/a/7"))
    first[1]["path_params"]["n"] = 99  # a request that changes its own parameters
    again = index.matches(scope_of("GET", "/a/7"))
    assert first[0] is again[0] is Match.FULL
    assert again[1]["route"] is again[1]["tenantry.route_index"] is numbered
    assert again[1]["path_params"] == {"n": 7}
    assert index.matches(scope_of("GET", "/a/8"))[1]["path_params"] == {"n": 8}
    assert index.matches(scope_of("POST", "/a/7")) == (Match.NONE, {})  # another method: the list's 405
    long = "/a/" + "9" * 300  # matched each time, not kept
    assert index.matches(scope_of("GET", long))[1]["path_params"] == {"n": int("9" * 300)}
    assert index.matches(scope_of("GET", long))[1]["route"] is numbered
    assert all(len(path) <= 256 for _, path, _ in index._matched)


def test_the_candidates_of_long_leading_segments_are_worked_out_each_time_not_kept():
    numbered = Route("/p/{token}", endpoint("page"))
    index = RouteIndex([numbered])
    for n in range(50):
        long = f"/p/{n}" + "x" * 300
        assert index.candidates(long) == (numbered,)
        assert index.matches(scope_of("GET", long))[1]["route"] is numbered
    assert index.candidates("/p/short") == (numbered,)
    assert list(index._kept) == [("p", "short")]


def test_a_match_behind_a_route_that_reads_more_than_the_path_is_not_remembered():
    by_host = Host("tenant.example", app=Route("/a/x", endpoint("host")))
    plain = Route("/a/x", endpoint("plain"))
    index = RouteIndex([by_host, plain])

    def asked(host: str) -> dict[str, Any]:
        return {**scope_of("GET", "/a/x"), "headers": [(b"host", host.encode())]}

    assert indexed(index, asked("elsewhere.example")) is plain
    assert indexed(index, asked("tenant.example")) is by_host
    assert indexed(index, asked("elsewhere.example")) is plain


def test_a_request_the_index_cannot_answer_in_full_is_left_to_the_list():
    index = RouteIndex([Route("/a/x", endpoint("x"), methods=["POST"])])
    assert index.matches(scope_of("GET", "/a/x")) == (Match.NONE, {})  # the list answers 405
    assert index.matches(scope_of("GET", "/a/x/")) == (Match.NONE, {})  # the list redirects
    assert index.matches({"type": "websocket", "path": "/a/x"}) == (Match.NONE, {})


@pytest.mark.parametrize("path", ["/partner/added-later", "/added-later"])
def test_a_route_added_after_the_app_was_built_is_still_found(settings, clock, database, path):
    app = create_app(settings, clock=clock, database=database)
    app.router.routes.append(Route(path, endpoint("late")))
    with TestClient(app) as http:
        assert http.get(path).text == "late"
        assert http.get("/healthz").status_code == 200


def test_indexing_again_keeps_one_index_in_front():
    routes: list[BaseRoute] = [Route("/a", endpoint("a"))]
    index_routes(routes)
    index_routes(routes)
    assert isinstance(routes[0], RouteIndex) and [type(r) for r in routes] == [RouteIndex, Route]


def test_the_app_answers_through_the_index_as_before(app, http, partner):
    assert http.get("/healthz").status_code == 200
    assert http.get("/static/does-not-exist.css").status_code == 404
    assert http.get("/api/1/nowhere", headers=partner.headers).status_code == 404
    assert http.put("/healthz").status_code == 405
    assert http.get("/api/1/me", headers=partner.headers).status_code == 200

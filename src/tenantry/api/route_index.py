"""An index of the app's routes by the first segment of their path, in front of the list.

The router matches a request against the app's routes one by one, in order, until one matches:
with some two hundred routes, a console page, a portal page or a static file paid for well over a
hundred failed matches (100 to 270 µs a request), `/healthz` ninety. A route can only match a path
whose first segment is its own (`/partner/...`, `/api/...`, `/static/...`): that segment is literal
in every template but one that opens with a parameter. `RouteIndex` is a route, put first in the
list, that keeps for each first segment the routes that may match it (and the few that may match
any), in the list's order, and matches the request against those alone. So the route it finds is
the one the whole list would have found first.

It decides only what it can: a request no route of its segment takes in full (a 404, a 405 for a
method the path does not take, a redirect to the path with or without its trailing slash) gets
no answer from it, and the router goes on through the whole list as before. The routes themselves
stay in the list as they are: the API documentation, `url_for` and anything that reads the app's
routes see them all.

It is built from the routes as they stand (`index_routes`, the last step of `create_app`): a route
added afterwards is still found, by the list, when it comes after the index (`append`); code that
rearranges the list (tests) leaves the index out, or builds it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.routing import BaseRoute, Match, Mount, NoMatchFound, Route, WebSocketRoute, get_route_path
from starlette.types import Receive, Scope, Send

# Where the matched route waits in the scope between `matches` and `handle`.
_PICKED = "tenantry.route_index"


def _first_segment(path: str) -> str | None:
    """A template's literal first segment, or None when it may be anything (a parameter in it)."""
    if not path.startswith("/"):
        return None
    segment = path[1:].split("/", 1)[0]
    return None if "{" in segment else segment


def _segment_of(route: BaseRoute) -> str | None:
    if isinstance(route, (Route, WebSocketRoute)):
        return _first_segment(route.path)
    if isinstance(route, Mount) and route.path:
        return _first_segment(route.path)
    return None  # a Host, a Mount at the root, a route of another kind: may take any path


class RouteIndex(BaseRoute):
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        by_segment: dict[str, list[BaseRoute]] = {}
        anywhere: list[BaseRoute] = []
        for route in routes:
            segment = _segment_of(route)
            if segment is None:
                anywhere.append(route)
                for members in by_segment.values():
                    members.append(route)
            else:
                # A segment seen first now also takes every route that may match anything, in order.
                by_segment.setdefault(segment, list(anywhere)).append(route)
        self._by_segment = {segment: tuple(members) for segment, members in by_segment.items()}
        self._anywhere = tuple(anywhere)

    def candidates(self, path: str) -> tuple[BaseRoute, ...]:
        """The routes that may match `path`, in the list's order."""
        segment = path[1:].split("/", 1)[0] if path.startswith("/") else None
        found = self._by_segment.get(segment) if segment is not None else None
        return self._anywhere if found is None else found

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        for route in self.candidates(get_route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child_scope, _PICKED: route}
        return Match.NONE, {}  # the list decides: a partial match (405), a redirect, or 404

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: BaseRoute = scope.pop(_PICKED)
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)  # the routes in the list name themselves


def index_routes(routes: list[BaseRoute]) -> RouteIndex:
    """Put a `RouteIndex` of `routes` in front of them (in place), and return it."""
    index = RouteIndex([route for route in routes if not isinstance(route, RouteIndex)])
    routes[:] = [index, *(route for route in routes if not isinstance(route, RouteIndex))]
    return index

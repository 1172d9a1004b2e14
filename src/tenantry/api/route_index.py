"""An index of the app's routes by the leading segments of their path, in front of the list.

The router matches a request against the app's routes one by one, in order, until one matches:
with some two hundred routes, a console page, a portal page or a static file paid for well over a
hundred failed matches (100 to 270 µs a request), `/healthz` ninety. A route can only match a path
that begins with the literal segments its template begins with (`/partner/clients/...`,
`/api/1/clients/...`, `/static/...`; none for a template that opens with a parameter).
`RouteIndex` is a route, put first in the list, that keeps the routes by those segments (up to
three) and matches a request against the routes whose segments begin its path, in the list's
order, and against those alone. So the route it finds is the one the whole list would have found
first.

It decides only what it can: a request no such route takes in full (a 404, a 405 for a method the
path does not take, a redirect to the path with or without its trailing slash) gets no answer
from it, and the router goes on through the whole list as before. The routes themselves stay in
the list as they are: the API documentation, `url_for` and anything that reads the app's routes
see them all.

It also remembers, for up to `_KEPT` requests of distinct method and path, the route that took
the request in full and the scope it set: the same method and path are matched by the same route
with the same parameters (a plain `Route`'s match reads nothing else of the request), so the next
one costs a dictionary lookup, not a regular expression per candidate (3 to 5 µs of each request
of the hot routes). A match is remembered only when it and every route asked before it are plain
routes (a mount or an included router may read more than the path), only at the app's root
(no `path_params` of an outer mount), and only for paths of up to `_REMEMBERED_PATH` characters.

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


# How many leading segments of a path the index tells routes apart by (`/api/1/clients/...`).
DEPTH = 3
# Candidate lists kept for this many distinct leading segments of requested paths (any path can be
# asked for: past this, a list is worked out for each request instead of kept; so is the list of
# leading segments longer than `_REMEMBERED_PATH` together).
_KEPT = 4096
# The longest path whose match is remembered (the app's own paths are far shorter: a long one is
# matched each time, and the memory kept stays small whatever paths are asked for).
_REMEMBERED_PATH = 256


def _literal_prefix(path: str) -> tuple[str, ...] | None:
    """A template's leading literal segments (up to `DEPTH`): every path the route matches begins
    with them. None when it does not begin with "/" (it may then take anything)."""
    if not path.startswith("/"):
        return None
    prefix = []
    for segment in path[1:].split("/")[:DEPTH]:
        if "{" in segment:
            break
        prefix.append(segment)
    return tuple(prefix)


def _prefix_of(route: BaseRoute) -> tuple[str, ...]:
    if isinstance(route, (Route, WebSocketRoute)) or (isinstance(route, Mount) and route.path):
        return _literal_prefix(route.path) or ()
    return ()  # a Host, a Mount at the root, a route of another kind: may take any path


def _leading(path: str) -> tuple[str, ...]:
    return tuple(path[1:].split("/", DEPTH)[:DEPTH]) if path.startswith("/") else ()


class RouteIndex(BaseRoute):
    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        # Each route under its literal prefix, with its place in the list.
        self._by_prefix: dict[tuple[str, ...], list[tuple[int, BaseRoute]]] = {}
        for place, route in enumerate(routes):
            self._by_prefix.setdefault(_prefix_of(route), []).append((place, route))
        self._kept: dict[tuple[str, ...], tuple[BaseRoute, ...]] = {}
        # (method, path, root_path) -> the scope set by the route that took it in full.
        self._matched: dict[tuple[str, str, str], Scope] = {}

    def candidates(self, path: str) -> tuple[BaseRoute, ...]:
        """The routes that may match `path` (those whose literal prefix begins it), in the list's
        order."""
        leading = _leading(path)
        found = self._kept.get(leading)
        if found is None:
            lists = [self._by_prefix.get(leading[:depth], ()) for depth in range(len(leading) + 1)]
            found = tuple(route for _, route in sorted(item for members in lists for item in members))
            if len(self._kept) < _KEPT and sum(map(len, leading)) <= _REMEMBERED_PATH:
                self._kept[leading] = found
        return found

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path: str = scope["path"]
        remembered = (
            None
            if scope.get("path_params") or len(path) > _REMEMBERED_PATH
            else (scope["method"], path, scope.get("root_path", ""))
        )
        if remembered is not None and (kept := self._matched.get(remembered)) is not None:
            return Match.FULL, {**kept, "path_params": dict(kept["path_params"])}  # its own parameters
        by_path = remembered is not None  # so far, every route asked decided by the path alone
        for route in self.candidates(get_route_path(scope)):
            by_path = by_path and isinstance(route, Route)
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                # The route, as the router would set it (a route's own choice, a lean route's, wins).
                child_scope = {"route": route, **child_scope, _PICKED: route}
                if by_path and remembered is not None:  # a copy kept: the request may change its own
                    if len(self._matched) >= _KEPT:
                        self._matched.clear()
                    self._matched[remembered] = {
                        **child_scope,
                        "path_params": dict(child_scope["path_params"]),
                    }
                return Match.FULL, child_scope
        return Match.NONE, {}  # the list decides: a partial match (405), a redirect, or 404

    def pick(self, scope: Scope) -> tuple[BaseRoute, Scope] | None:
        """The route that takes this request in full and the scope it sets, or None."""
        match, child_scope = self.matches(scope)
        if match is not Match.FULL:
            return None
        child_scope = dict(child_scope)
        return child_scope.pop(_PICKED), child_scope

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

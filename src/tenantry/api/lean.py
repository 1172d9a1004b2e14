"""Lean routes: the hottest API reads, answered without FastAPI's per-request machinery.

FastAPI answers a request by solving the endpoint's dependencies (path, query, header and cookie
parameters, each through its own validation), running it, then validating and serialising what it
returned. For `GET /api/1/clients/{id}` that machinery cost about a sixth of the request's CPU on
PostgreSQL + Redis (in-process A/B: 557 µs against 470 µs a request, medians of 8), about as
much as one of its two database reads.

A `LeanRoute` stands in front of an `APIRoute` whose endpoint is a coroutine that takes nothing but
path parameters and the `Request` (no dependency, query, header, cookie or body): it is checked
when the route is made, so an endpoint that grows a parameter fails at start-up instead of losing
it silently. It answers exactly as FastAPI would:

- each path parameter through the route's own field (same type, same bounds); a value the field
  refuses is handed to the `APIRoute` itself, which answers its usual 422, and so is a request of
  another method (the router hands it to the first route whose path matched: FastAPI's 405);
- the endpoint's return value through the route's own response field (validated, then dumped to
  JSON by Pydantic, as FastAPI's fast path does), with the route's status code; a `Response` is
  sent as it is;
- errors go up to the app's handlers, as from any route.

The `APIRoute` stays in the app (after its lean twin, so it is never matched first): the API
documentation and anything that reads the app's routes see the route as declared.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from starlette._exception_handler import ExceptionHandlers, StatusHandlers, _lookup_exception_handler
from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, compile_path
from starlette.types import Receive, Scope, Send

from tenantry.api.deps import KeyCompanions, authenticate_api, needs_caller, with_headers
from tenantry.api.route_index import RouteIndex
from tenantry.domains.routing import HostTable, place_host_partner


class LeanRoute(Route):
    def __init__(self, route: APIRoute) -> None:
        dependant = route.dependant
        extra = (
            dependant.query_params,
            dependant.header_params,
            dependant.cookie_params,
            dependant.body_params,
            dependant.dependencies,
        )
        request_name = dependant.request_param_name
        coroutine = inspect.iscoroutinefunction(route.endpoint)
        if any(extra) or not coroutine or request_name is None or route.response_field is None:
            raise ValueError(
                f"{route.path}: a lean route's endpoint is a coroutine that takes only path parameters "
                "and the request, and declares its response model"
            )
        shaped = (
            route.response_model_include,
            route.response_model_exclude,
            route.response_model_exclude_unset,
            route.response_model_exclude_defaults,
            route.response_model_exclude_none,
        )
        if any(shaped) or not route.response_model_by_alias:
            raise ValueError(f"{route.path}: a lean route dumps its response model as it is")
        methods = set(route.methods or ())
        super().__init__(route.path, route.endpoint, methods=list(methods), name=route.name)
        self.methods = self._methods = methods  # as declared (Starlette would add HEAD to a GET)
        self.include_in_schema = False
        self.api_route = route
        self._fields = [(field.alias, field) for field in dependant.path_params]
        self._request_name = request_name
        self._response_field = route.response_field
        self._status_code = route.status_code or 200
        self._sized = not (self._status_code < 200 or self._status_code in (204, 304))
        self._response_type = route.response_field.field_info.annotation

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self.api_route  # what metrics and handlers read: the declared route
        return match, child_scope

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        arguments = self.arguments(scope["method"], scope["path_params"])
        if arguments is None:
            await self.api_route.handle(scope, receive, send)
            return
        await self.answer(arguments, scope, receive, send)

    def arguments(self, method: str, path_params: dict[str, Any]) -> dict[str, Any] | None:
        """The endpoint's arguments, or None when the declared route must answer: another method
        (this route is then only the router's partial match: FastAPI's own 405), or a parameter
        the field refuses (FastAPI's own 422)."""
        return self._arguments(path_params) if method in self._methods else None

    async def answer(self, arguments: dict[str, Any], scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(arguments, scope, receive, send)
        await response(scope, receive, send)

    async def respond(
        self, arguments: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> Response:
        """The endpoint's answer, not sent yet: a `Response` it returned as it is, else its value
        validated and dumped (as FastAPI's fast path does), with the route's status code."""
        arguments[self._request_name] = Request(scope, receive, send)
        returned = await self.endpoint(**arguments)
        if isinstance(returned, Response):
            return returned
        value, errors = self._response_field.validate(returned, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=returned)
        if type(value) is self._response_type:  # the model itself: its own serialiser, as the field's would
            body = value.__pydantic_serializer__.to_json(value, by_alias=True)
        else:
            body = self._response_field.serialize_json(value, by_alias=True)
        return JsonAnswer(body, self._status_code, self._sized)

    def _arguments(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        arguments: dict[str, Any] = {}
        for name, field in self._fields:
            value, errors = field.validate(raw.get(name), {}, loc=("path", name))
            if errors:
                return None
            arguments[field.name] = value
        return arguments


class JsonAnswer(Response):
    """An answer whose body is a response model already dumped to JSON (a view kept as JSON, say):
    the same headers, in the same order, as Starlette's `Response(body, status,
    media_type="application/json")`, which FastAPI sends for the model itself (no length for a
    status that has no body: `sized=False`)."""

    media_type = "application/json"

    def __init__(self, body: bytes, status: int = 200, sized: bool = True) -> None:
        self.body, self.status_code, self.background = body, status, None
        length = str(len(body)).encode("latin-1")
        self.raw_headers = [(b"content-length", length), _JSON] if sized else [_JSON]


_JSON = (b"content-type", b"application/json")


# Marks a page endpoint the hot path may answer (`hot_page`).
_HOT_PAGE = "__tenantry_hot_page__"


def hot_page(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Let `HotPath` answer this page: a coroutine that takes the `Request` alone and returns a
    `Response`, served by a plain Starlette `Route` (no dependency, nothing FastAPI solves), outside
    `/api/1` (no caller to authenticate)."""
    if not inspect.iscoroutinefunction(endpoint) or len(inspect.signature(endpoint).parameters) != 1:
        raise ValueError(f"{endpoint.__qualname__}: a hot page is a coroutine that takes the request alone")
    setattr(endpoint, _HOT_PAGE, True)
    return endpoint


# A request the hot path answers: the route, the scope the router would set, and the endpoint's
# arguments (a lean route's), or None (a hot page's: the request alone).
Found = tuple[Route, Scope, dict[str, Any] | None]


class HotPath:
    """A lean route's request, or a hot page's (`hot_page`), answered by `RequestMiddleware` (after
    its request id, body limit and admission) without the layers below it, doing in one place what
    they would do:

    - `HostMiddleware`: the partner of the `Host` (`place_host_partner`);
    - `ApiAuthMiddleware`: for a lean route, the caller, metered, its key companion read beside its
      key (`authenticate_api`), and the rate-limit headers on the answer (those `rate_limited`
      adds, put on the answer before it is sent); a hot page is outside `/api/1`, where it does
      nothing;
    - `IdempotencyMiddleware`: nothing (it keeps POSTs only);
    - the router and Starlette's exception middleware: the route's scope, then the endpoint, an
      error it raises answered by the app's handler for it (the same tables, looked up the same
      way) or raised on to `RequestMiddleware` when it has none. The answer is made before
      anything is sent (a page's endpoint returns it, `LeanRoute.respond` a lean route's), so an
      error is handled without wrapping `send` to learn whether the answer has started.

    FastAPI's exit stacks (for dependencies and uploaded files) have nothing to close for an
    endpoint that takes only path parameters or the request. The router's current routes decide
    which route answers (through their `RouteIndex`), so a test that rearranges them is obeyed; a
    request no lean route would answer in full (another method, a path parameter its field
    refuses) goes down the whole stack. Measured in-process on SQLite's `GET /api/1/clients/{id}`
    (instructions counted by valgrind, which the machine's noise does not move): 701,000 a
    request against 728,000 down the stack.
    """

    def __init__(
        self, owner: FastAPI, *, paths: tuple[str, ...], hosts: HostTable, companions: KeyCompanions
    ) -> None:
        self._owner = owner
        # The hot routes' path templates, as one regular expression (their parameters unnamed, so
        # two may share a name): a request none of them matches costs one match here, not a second
        # matching of the router's routes (15 to 35 µs a request for the other routes under
        # `/api/1/clients/`).
        unnamed = (re.sub(r"[(][?]P<[^>]+>", "(?:", compile_path(path)[0].pattern) for path in paths)
        self._paths = re.compile("|".join(f"(?:{pattern})" for pattern in unnamed))
        self._hosts = hosts
        self._companions = companions
        self._handlers: tuple[ExceptionHandlers, StatusHandlers] | None = None

    def find(self, scope: Scope) -> Found | None:
        """The lean route that answers this request in full, or None."""
        path = scope["path"]
        if not self._paths.match(path):
            return None
        routes = self._owner.router.routes
        picked = routes[0].pick(scope) if routes and isinstance(routes[0], RouteIndex) else None
        if picked is None:
            return None
        route, child_scope = picked
        if isinstance(route, LeanRoute):
            if not needs_caller(scope):
                return None
            arguments = route.arguments(scope["method"], child_scope["path_params"])
            return None if arguments is None else (route, child_scope, arguments)
        if type(route) is Route and getattr(route.endpoint, _HOT_PAGE, False) and not needs_caller(scope):
            return route, child_scope, None
        return None

    async def serve(self, found: Found, scope: Scope, receive: Receive, send: Send) -> None:
        route, child_scope, arguments = found
        await place_host_partner(scope, self._hosts)
        if arguments is None:  # a hot page: no caller
            scope.update(child_scope)
            scope["router"] = self._owner.router
            scope["starlette.exception_handlers"] = self._handler_tables()
            request = Request(scope, receive, send)
            try:
                response = await route.endpoint(request)
            except Exception as exc:  # nothing was sent yet
                response = await self._handled(exc, request)
            await response(scope, receive, send)
            return
        assert isinstance(route, LeanRoute)
        state = await authenticate_api(scope, self._companions)
        scope.update(child_scope)
        scope["router"] = self._owner.router
        scope["starlette.exception_handlers"] = self._handler_tables()
        try:
            response = await route.respond(arguments, scope, receive, send)
        except Exception as exc:  # nothing was sent: the app's handler for it answers, if it has one
            response = await self._handled(exc, Request(scope, receive, send))
        extra = state.get("rate_limit_headers")
        if extra:  # a metered call's (`rate_limited`)
            response.raw_headers = with_headers(response.raw_headers, extra)
        await response(scope, receive, send)

    async def _handled(self, exc: Exception, request: Request) -> Response:
        """What Starlette's exception middleware answers for an error the endpoint raised: the
        handler of its status (an `HTTPException`), else of its nearest class; raised on when the
        app has none."""
        exception_handlers, status_handlers = self._handler_tables()
        handler = status_handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
        if handler is None:
            handler = _lookup_exception_handler(exception_handlers, exc)
        if handler is None:
            raise exc
        if is_async_callable(handler):
            response = await handler(request, exc)  # type: ignore[arg-type]  # an HTTP handler's, as Starlette calls it
        else:
            response = await run_in_threadpool(handler, request, exc)
        exc.__traceback__ = None  # as Starlette does: a reused error would gather tracebacks
        assert isinstance(response, Response), "an HTTP handler answers with a Response"
        return response

    def _handler_tables(self) -> tuple[ExceptionHandlers, StatusHandlers]:
        # As the app's stack builds Starlette's exception middleware: from the app's handlers, but
        # any of status 500 or of Exception (`app.TenantryApp` refuses those: what nothing else
        # answers is `RequestMiddleware`'s).
        if self._handlers is None:
            handlers = {
                key: handler
                for key, handler in self._owner.exception_handlers.items()
                if key not in (500, Exception)
            }
            tables = ExceptionMiddleware(self._owner, handlers=handlers)
            self._handlers = (tables._exception_handlers, tables._status_handlers)
        return self._handlers


def lean_first(routes: list[Any], wanted: tuple[tuple[str, str], ...]) -> None:
    """Put a `LeanRoute` in front of each wanted (method, path) `APIRoute` of `routes`, in place."""
    for method, path in wanted:
        for index, route in enumerate(routes):
            if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ()):
                routes.insert(index, LeanRoute(route))
                break
        else:
            raise ValueError(f"no route {method} {path} to make lean")

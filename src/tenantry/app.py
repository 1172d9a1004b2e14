"""create_app(settings): wires the routers, error handlers and middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantry import __version__
from tenantry.accounts.api import router as accounts_router
from tenantry.api import docs as api_docs
from tenantry.api import problems
from tenantry.api.deps import PUBLIC_API_PATHS, ApiAuthMiddleware, KeyCompanions, Services
from tenantry.api.idempotency import IdempotencyMiddleware
from tenantry.api.lean import HotPath, lean_first
from tenantry.api.middleware import Admission, RequestMiddleware
from tenantry.api.route_index import index_routes
from tenantry.auth.keycache import KeyCache
from tenantry.branding.api import router as branding_router
from tenantry.clients import repository as clients_repo
from tenantry.clients.api import router as clients_router
from tenantry.clock import Clock, SystemClock
from tenantry.dashboards.api import router as dashboards_router
from tenantry.datasources.api import router as datasources_router
from tenantry.db.generation import watch_key_writes
from tenantry.db.session import Database, database_from_settings
from tenantry.domains.api import internal_router as domains_internal_router
from tenantry.domains.api import router as domains_router
from tenantry.domains.repository import VERIFIED_HOSTS
from tenantry.domains.routing import HostMiddleware, HostTable
from tenantry.exports.api import router as exports_router
from tenantry.links.api import router as links_router
from tenantry.links.web import router as published_router
from tenantry.logs import configure_logging
from tenantry.mail import Mailer, mailer_from_settings
from tenantry.meter.counters import RedisCounter
from tenantry.meter.service import Meter, meter_from_settings
from tenantry.observability import router as observability_router
from tenantry.outbound import Guard
from tenantry.partners.api import router as partner_router
from tenantry.reports.api import router as reports_router
from tenantry.settings import Settings
from tenantry.statements.api import router as statements_router
from tenantry.templates.api import router as templates_router
from tenantry.users import repository as users_repo
from tenantry.users.api import router as users_router
from tenantry.web import install as install_web
from tenantry.webhooks.api import router as webhooks_router


class TenantryApp(FastAPI):
    """FastAPI, with the app's own middleware (`RequestMiddleware` first) as the outermost layers
    of every HTTP request.

    FastAPI enters a request through `FastAPI.__call__` (its OpenTelemetry check) and
    `Starlette.__call__`, then wraps the app's middleware in three of its own:
    `ServerErrorMiddleware` (a plain 500 for an error nothing else answered),
    `ExceptionTelemetryMiddleware` (telemetry is off here) and `AppBodyLimitMiddleware`
    (FastAPI's `max_body_size`, not used here). `RequestMiddleware` already does their work for
    Tenantry: it answers every error that reaches it (a problem, with the request id) and limits
    bodies itself. So they are left out, and an HTTP request goes straight to it. What FastAPI puts
    beneath the app's middleware (Starlette's exception middleware with the app's handlers, and the
    exit stack for uploaded files) stays. Lifespan and WebSocket scopes go through FastAPI as
    before. Counted by valgrind on a constant endpoint served as `tenantry serve` serves: 441,000
    instructions a request against 457,000 through FastAPI's layers (the hello-world floor takes
    439,000)."""

    def build_middleware_stack(self) -> ASGIApp:
        # FastAPI gives handlers of status 500 and of Exception to the server-error layer; here
        # `RequestMiddleware` answers what nothing else did, so such a handler would never run.
        if any(key in (500, Exception) for key in self.exception_handlers):
            raise TypeError("errors nothing else answers are RequestMiddleware's: handle a narrower class")
        handlers = dict(self.exception_handlers)
        app: ASGIApp = AsyncExitStackMiddleware(self.router)
        app = ExceptionMiddleware(app, handlers=handlers, debug=self.debug)
        for cls, args, kwargs in reversed(self.user_middleware):
            app = cls(app, *args, **kwargs)
        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        if self.root_path:  # as FastAPI's own entry sets it
            scope["root_path"] = self.root_path
        scope["app"] = self
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        await self.middleware_stack(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    services = app.state.services
    await services.reads.open()
    try:
        yield
    finally:
        await services.reads.close()
        await services.meter.aclose()
        # API calls counted in Redis but not yet written to the database are written before exiting.
        await run_in_threadpool(services.meter.close)


def serving_app() -> FastAPI:
    """The app of one of `tenantry serve --workers N`'s serving processes (uvicorn's factory):
    the process ends with its supervisor (`worker.serve.end_with_supervisor`)."""
    from tenantry.worker.serve import end_with_supervisor

    end_with_supervisor()
    return create_app()


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
    mailer: Mailer | None = None,
    meter: Meter | None = None,
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    settings.ensure_secret_key()
    app = TenantryApp(
        title="Tenantry",
        version=__version__,
        description="Client accounts whose status decides what each client may do.",
        openapi_url="/api/1/openapi.json",
        # Served by tenantry.api.docs, from this server's own copy of Swagger UI.
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
        # Our own metrics and logs describe every request (tenantry.api.middleware); FastAPI's
        # OpenTelemetry hooks would only cost each request a few context lookups.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    database = database or database_from_settings(settings)
    meter = meter or meter_from_settings(settings, database)
    app.state.services = Services(
        settings=settings,
        database=database,
        clock=clock or SystemClock(settings.clock_offset),
        mailer=mailer or mailer_from_settings(settings),
        meter=meter,
        guard=Guard.from_settings(settings),
        key_cache=key_cache(settings, database, meter),
    )
    problems.install(app)
    api_docs.install(app)
    # Outermost last: RequestMiddleware (security headers, request id, body limit, admission, errors,
    # metrics); authentication of /api/1; Idempotency-Key, which needs the caller.
    companions = KeyCompanions(KEY_COMPANIONS)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(ApiAuthMiddleware, companions=companions)
    # The partner whose domain the Host names, before anything reads a session (API or page).
    app.state.hosts = verified_hosts(app.state.services)
    app.add_middleware(HostMiddleware, hosts=app.state.hosts)
    # The lean routes' and hot pages' requests skip the layers below RequestMiddleware
    # (`api.lean.HotPath`).
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        admission=Admission(admission_limit(settings, database), settings.request_queue_timeout_seconds),
        hot=HotPath(
            app,
            paths=(*(path for _, path in LEAN_ROUTES), *HOT_PAGES),
            hosts=app.state.hosts,
            companions=companions,
        ),
    )
    # The hottest routes first: a request is matched against the routes in order.
    for router in (
        published_router,
        clients_router,
        users_router,
        partner_router,
        datasources_router,
        dashboards_router,
        exports_router,
        links_router,
        statements_router,
        webhooks_router,
        templates_router,
        branding_router,
        reports_router,
        observability_router,
        domains_router,
        domains_internal_router,
        accounts_router,
    ):
        add_routes(app, router)
    install_web(app)
    hottest_first(app)
    lean_first(app.router.routes, LEAN_ROUTES)
    index_routes(app.router.routes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = api_docs.with_exact_integer_bounds(
                problems.document_problems(FastAPI.openapi(app), PUBLIC_API_PATHS)
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def key_cache(settings: Settings, database: Database, meter: Meter) -> KeyCache | None:
    """The key lookups' cache, with PostgreSQL and Redis (`auth.keycache`): its generation is changed
    by every write of this database (and of the worker's and the command line's: `db.generation`)."""
    counter = meter.counter
    if database.engine.dialect.name != "postgresql" or not isinstance(counter, RedisCounter):
        return None
    watch_key_writes(database.engine, settings.redis_url)
    return KeyCache(counter.loop_client)


def verified_hosts(services: Services) -> HostTable:
    """Every partner's verified domains, read on the event loop every few seconds."""

    async def load() -> dict[str, int]:
        async with services.reads.connection() as reads:
            return {row.hostname: row.partner_id for row in await reads.run(VERIFIED_HOSTS)}

    return HostTable(load, services.settings.domain_cache_seconds)


# Connections kept free for what is not queued (`/healthz`, `/metrics`); the in-process worker has
# a pool of its own.
RESERVED_CONNECTIONS = 2


def admission_limit(settings: Settings, database: Database) -> int:
    """How many requests one process serves at once: the setting, or half the connections left
    after the reserve, since a request holds at most two connections at a time."""
    if settings.max_concurrent_requests is not None:
        return settings.max_concurrent_requests
    return max(1, (database.capacity - RESERVED_CONNECTIONS) // 2)


# Matched first, ahead of every other route (each route a request passes costs a pattern match).
HOT_ROUTES = (
    ("GET", "/api/1/clients/{client_id}"),
    ("GET", "/api/1/me"),
    ("GET", "/published/{token}"),
    ("GET", "/published/{token}/live"),
)


# Answered by a `LeanRoute` (tenantry.api.lean), without FastAPI's per-request parameter solving.
LEAN_ROUTES = (("GET", "/api/1/clients/{client_id}"), ("GET", "/api/1/me"))


# Paths of pages the hot path answers too, for the methods their routes take (their endpoints are
# marked `tenantry.api.lean.hot_page`).
HOT_PAGES = ("/published/{token}",)


# Read in the API key's own statement (`auth.repository.KeyCompanion`): one round trip, not two.
KEY_COMPANIONS = {
    ("GET", "/api/1/clients/{client_id}"): clients_repo.CLIENT_WITH_KEY,
    ("GET", "/api/1/me"): users_repo.ME_WITH_KEY,
}


def hottest_first(app: FastAPI) -> None:
    """Move the hottest routes to the front of the app's list, in the order of `HOT_ROUTES`.
    Their paths overlap no other route's, so the order changes nothing but the time to match."""

    def rank(route: Any) -> int:
        for index, (method, path) in enumerate(HOT_ROUTES):
            if getattr(route, "path", None) == path and method in (getattr(route, "methods", None) or ()):
                return index
        return len(HOT_ROUTES)

    app.router.routes.sort(key=rank)  # stable: the rest keep their order


def add_routes(app: FastAPI, router: APIRouter) -> None:
    """Add a router's routes to the app's own list. `include_router` would keep the router as one
    entry that is matched route by route twice over for every request (FastAPI's included
    routers); our routers carry nothing an inclusion adds (their prefix and tags are already in
    each route), so their routes are added as they are, and matched once."""
    app.router.routes.extend(router.routes)

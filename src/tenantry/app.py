"""create_app(settings): wires the routers, error handlers and middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from tenantry import __version__
from tenantry.api import problems
from tenantry.api.deps import Services
from tenantry.api.idempotency import IdempotencyMiddleware
from tenantry.clients.api import router as clients_router
from tenantry.clock import Clock, SystemClock
from tenantry.dashboards.api import router as dashboards_router
from tenantry.datasources.api import router as datasources_router
from tenantry.db.session import Database
from tenantry.exports.api import router as exports_router
from tenantry.links.api import router as links_router
from tenantry.links.web import router as published_router
from tenantry.mail import Mailer, mailer_from_settings
from tenantry.meter.headers import RateLimitHeadersMiddleware
from tenantry.meter.service import Meter, meter_from_settings
from tenantry.observability import router as observability_router
from tenantry.partners.api import router as partner_router
from tenantry.settings import Settings
from tenantry.statements.api import router as statements_router
from tenantry.users.api import router as users_router
from tenantry.web import install as install_web
from tenantry.webhooks.api import router as webhooks_router


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # API calls counted in Redis but not yet written to the database are written before exiting.
    await run_in_threadpool(app.state.services.meter.close)


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    database: Database | None = None,
    mailer: Mailer | None = None,
    meter: Meter | None = None,
) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(
        title="Tenantry",
        version=__version__,
        description="Client accounts whose status decides what each client may do.",
        openapi_url="/api/1/openapi.json",
        docs_url="/api/1/docs",
        redoc_url=None,
        lifespan=_lifespan,
    )
    database = database or Database(settings.sqlalchemy_url)
    app.state.services = Services(
        settings=settings,
        database=database,
        clock=clock or SystemClock(settings.clock_offset),
        mailer=mailer or mailer_from_settings(settings),
        meter=meter or meter_from_settings(settings, database),
    )
    problems.install(app)
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.include_router(partner_router)
    app.include_router(clients_router)
    app.include_router(statements_router)
    app.include_router(users_router)
    install_web(app)
    app.include_router(datasources_router)
    app.include_router(dashboards_router)
    app.include_router(exports_router)
    app.include_router(links_router)
    app.include_router(published_router)
    app.include_router(webhooks_router)
    app.include_router(observability_router)

    return app

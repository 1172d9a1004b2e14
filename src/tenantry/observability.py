"""`/healthz` (can this process serve?) and `/metrics` (Prometheus text format).

Neither needs a key: they are meant for a load balancer and a scraper on the internal network,
and they reveal only counts and states, never tenant data.

`/healthz` answers 503 when the database cannot be reached, is not migrated to the code's
revision, or (SQLite) its disk is full; a Redis that cannot be reached makes it `degraded` but
still 200: the console, the portal and published pages keep working, only metered API calls are
refused (503 `meter_unavailable`) until Redis is back.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from tenantry.api.deps import services
from tenantry.db.migrate import current_revision, head_revision
from tenantry.db.session import Database
from tenantry.events import repository as events_repo
from tenantry.settings import Settings
from tenantry.worker import repository as worker_repo

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)


# Below this much free space next to a SQLite file, writes fail any moment: report it.
MIN_FREE_BYTES = 1024 * 1024


@router.get("/healthz")
async def healthz(request: Request) -> JSONResponse:
    """Not queued behind other requests (see `RequestMiddleware`), and its checks run on a thread
    with the short time-outs of every database and Redis call."""
    app_services = services(request)
    report = await run_in_threadpool(_health, app_services.database, app_services.settings)
    return JSONResponse(report, status_code=200 if report["status"] != "unavailable" else 503)


def _health(database: Database, settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = {"status": "ok", "database": "ok"}
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = current_revision(conn)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return {"status": "unavailable", "database": reason}
    expected = head_revision()
    report["schema"] = {"version": current, "expected": expected, "current": current == expected}
    if current != expected:
        report["status"] = "unavailable"
    if database.is_sqlite:
        folder = Path(database.engine.url.database or ".").resolve().parent
        free = shutil.disk_usage(folder).free
        report["disk"] = "ok" if free >= MIN_FREE_BYTES else "full"
        if free < MIN_FREE_BYTES:
            report["status"] = "unavailable"
    report["redis"] = _redis_state(settings.redis_url)
    if report["redis"] == "unavailable" and report["status"] == "ok":
        report["status"] = "degraded"
    return report


def _redis_state(url: str | None) -> str:
    if not url:
        return "not configured"
    client = _redis_clients.get(url)
    if client is None:
        client = _redis_clients[url] = Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError):
        return "unavailable"
    return "ok"


_redis_clients: dict[str, Redis] = {}


class QueueCollector(Collector):
    """The work waiting in the database, the same whichever process is scraped."""

    def __init__(self, database: Database, now: datetime) -> None:
        self.database, self.now = database, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.database.session() as db:
                depth, oldest = worker_repo.queue_depth(db, self.now)
                pending = events_repo.pending_deliveries(db, self.now)
        except SQLAlchemyError:
            log.warning("metrics: the database could not be read")
            return
        yield GaugeMetricFamily(
            "tenantry_refresh_queue_depth", "Data-source refreshes due and not being run.", value=depth
        )
        lag = (self.now - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "tenantry_refresh_queue_lag_seconds",
            "How long the oldest due refresh has been waiting.",
            value=max(0.0, lag),
        )
        yield GaugeMetricFamily(
            "tenantry_event_deliveries_pending", "Event deliveries due for an attempt.", value=pending
        )


@router.get("/metrics")
def metrics(request: Request) -> Response:
    app_services = services(request)
    queue = CollectorRegistry(auto_describe=False)
    queue.register(QueueCollector(app_services.database, app_services.clock.now()))
    body = generate_latest(REGISTRY) + generate_latest(queue)
    return Response(body, media_type=CONTENT_TYPE_LATEST)

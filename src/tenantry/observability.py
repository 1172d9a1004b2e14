"""`/healthz` (is the database reachable?) and `/metrics` (Prometheus text format).

Neither needs a key: they are meant for a load balancer and a scraper on the internal network,
and they reveal only counts, never tenant data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tenantry.api.deps import services
from tenantry.db.session import Database
from tenantry.events import repository as events_repo
from tenantry.worker import repository as worker_repo

log = structlog.get_logger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz(request: Request) -> JSONResponse:
    database = services(request).database
    try:
        with database.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return JSONResponse({"status": "unavailable", "database": reason}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


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

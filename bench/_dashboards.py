"""Shared set-up for the dashboard benchmarks: a fresh database, a partner, an Active client with
a dashboard of 12 klips over 1,000-row data sources, and the app served by uvicorn on loopback in
a process of its own (so the load generator never competes with the server for one GIL)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import socket
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import update

from tenantry.app import create_app
from tenantry.clock import SystemClock
from tenantry.db.dashboard_models import DataSource
from tenantry.db.migrate import upgrade
from tenantry.db.session import Database
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings

KINDS = [
    ("value", {"value": "sales"}),
    ("table", {"fields": ["day", "region", "sales"]}),
    ("bar", {"x": "region", "y": "sales"}),
    ("line", {"x": "day", "y": "sales"}),
    ("pie", {"label": "region", "value": "units"}),
    ("line", {"x": "day", "y": "units"}),
]
REGIONS = ["North", "South", "East", "West", "Centre", "Islands"]


def rows(n: int, seed: int) -> list[dict[str, Any]]:
    return [
        {
            "day": f"2026-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}",
            "region": REGIONS[(i + seed) % len(REGIONS)],
            "sales": round(1000 + 400 * ((i * 7919 + seed) % 97) / 97, 2),
            "units": (i * 31 + seed) % 50,
        }
        for i in range(n)
    ]


@dataclass
class Served:
    app: FastAPI
    database: Database
    base: str
    headers: dict[str, str]
    client_id: int
    dashboard_id: int
    source_ids: list[int]
    process: multiprocessing.process.BaseProcess

    def refresh_all(self) -> None:
        """What a refresh does to the cache: every source gets a new data version."""
        with self.database.session(write=True) as session:
            for source_id in self.source_ids:
                session.execute(
                    update(DataSource).where(DataSource.id == source_id).values(version=uuid.uuid4().hex)
                )
            session.commit()

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
        self.database.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(klips: int = 12, rows_per_source: int = 1000, app_hook: Any = None, prepare: Any = None) -> Served:
    folder = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    port = _free_port()
    settings = Settings(
        database_url=url,
        data_dir=folder,
        secret_key="bench-" + "x" * 40,
        base_url=f"http://127.0.0.1:{port}",
        _env_file=None,  # type: ignore[call-arg]
    )
    database = Database(url)
    clock = SystemClock()
    with database.session(write=True) as session:
        created = create_partner(
            session,
            clock,
            name="Bench",
            admin_email="bench@bench.test",
            plan=PartnerPlan(),
            admin_password="x" * 12,
        )
        session.commit()
    app = create_app(settings, clock=clock, database=database)
    if app_hook is not None:
        app_hook(app)
    headers = {"Authorization": f"Bearer {created.api_key}"}
    with TestClient(app, base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
        resources = {"dashboards": 5, "users": 5, "published_links": 5}
        body = {"name": "Acme", "status": "active", "resources": resources}
        client_id = http.post("/api/1/clients", json=body).json()["id"]
        source_ids = []
        for i in range(klips):
            body = {"name": f"Source {i}", "kind": "inline", "rows": rows(rows_per_source, i)}
            source_ids.append(http.post(f"/api/1/clients/{client_id}/datasources", json=body).json()["id"])
        body = {
            "name": "Sales overview",
            "klips": [
                {
                    "title": f"Klip {i + 1} ({KINDS[i % len(KINDS)][0]})",
                    "kind": KINDS[i % len(KINDS)][0],
                    "datasource_id": source_ids[i],
                    "columns": KINDS[i % len(KINDS)][1],
                }
                for i in range(klips)
            ],
        }
        dashboard = http.post(f"/api/1/clients/{client_id}/dashboards", json=body)
        dashboard.raise_for_status()
        if prepare is not None:
            prepare(http, client_id, dashboard.json()["id"])
    database.dispose()  # the server process opens its own connections
    # Spawned, not forked, and the app built anew in the server process: polars (klip queries)
    # has already run its thread pool here, and a forked child of it can deadlock in polars.
    process = multiprocessing.get_context("spawn").Process(
        target=_run, args=(settings, port, app_hook), daemon=True
    )
    process.start()
    _wait_for(port)
    base = f"http://127.0.0.1:{port}"
    return Served(app, Database(url), base, headers, client_id, dashboard.json()["id"], source_ids, process)


def _run(settings: Settings, port: int, app_hook: Any) -> None:
    app = create_app(settings, clock=SystemClock())
    if app_hook is not None:
        app_hook(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2

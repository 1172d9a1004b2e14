"""Shared by the benchmarks: throw-away databases and bulk-made clients."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tenantry.db.migrate import upgrade
from tenantry.db.session import Database
from tenantry.settings import Settings

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        database = Database(url)
        try:
            yield database
        finally:
            database.dispose()


@contextmanager
def postgres_database(server_url: str) -> Iterator[Database]:
    """A fresh database on the given server, dropped afterwards."""
    server = make_url(Settings(database_url=server_url).sqlalchemy_url)
    name = f"tenantry_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    database = Database(url)
    try:
        upgrade(url)
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_reachable(server_url: str) -> bool:
    engine = create_engine(Settings(database_url=server_url).sqlalchemy_url)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def client_row(
    client_id: int, partner_id: int, at: datetime, status: str, trial_days: int = 14, **allocation: int
) -> dict[str, Any]:
    """A client row for bulk inserts, with trial fields when it is (or was) in Trial."""
    row: dict[str, Any] = {
        "id": client_id,
        "partner_id": partner_id,
        "name": f"Client {client_id}",
        "description": "",
        "status": status,
        "alloc_dashboards": 0,
        "alloc_users": 0,
        "alloc_published_links": 0,
        "alloc_api_calls_per_day": 0,
        "usage_dashboards": 0,
        "usage_users": 0,
        "usage_published_links": 0,
        "created_at": at,
        "status_changed_at": at,
        "trial_started_at": None,
        "trial_ends_at": None,
        "trial_extended_at": None,
    }
    row.update({f"alloc_{name}": value for name, value in allocation.items()})
    if status == "trial":
        row["trial_started_at"] = at
        row["trial_ends_at"] = at + timedelta(days=trial_days)
    return row


def median_seconds(repeat: int, work: Callable[[], object], warmup: int = 5) -> float:
    for _ in range(warmup):
        work()
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)

"""Listing rows costs the same for a 50,000-row snapshot as for a 50-row one.

Creates an inline source of 50 rows and one of 50,000 rows (about 3.5 MB of JSON) through the
API, then measures the median latency of `GET /api/1/datasources/{id}/rows?limit=50` at the
start, the middle and the end of each, in-process, on SQLite and on PostgreSQL when reachable
(`--no-postgres` to skip). Prints the medians and, on the last line, the 50k/50 ratios (goal:
close to 1; decoding the whole snapshot on every call made it about 40 on SQLite).

    .venv/bin/python bench/rows.py [--quick] [--no-postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from contextlib import AbstractContextManager
from typing import Any

from fastapi.testclient import TestClient
from support import DEFAULT_POSTGRES, postgres_database, postgres_reachable, sqlite_database

from tenantry.app import create_app
from tenantry.clock import SystemClock
from tenantry.db.session import Database
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings

REGIONS = ("North", "South", "East", "West")


def rows(n: int) -> list[dict[str, Any]]:
    return [
        {"day": f"2026-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}", "region": REGIONS[i % 4], "sales": i * 1.5}
        for i in range(n)
    ]


def measure(database: Database, repeat: int) -> dict[str, float]:
    clock = SystemClock()
    with database.session(write=True) as session:
        created = create_partner(
            session,
            clock,
            name="Bench",
            admin_email="rows@bench.test",
            plan=PartnerPlan(),
            admin_password="x" * 12,
        )
        session.commit()
    settings = Settings(
        database_url=database.url,
        data_dir=tempfile.mkdtemp(prefix="tenantry-bench-"),
        secret_key="bench-" + "x" * 40,
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=clock, database=database)
    with TestClient(app, headers={"Authorization": f"Bearer {created.api_key}"}) as http:
        client_id = http.post("/api/1/clients", json={"name": "Acme"}).json()["id"]
        sources = {}
        for size in (50, 50_000):
            body = {"name": f"{size} rows", "kind": "inline", "rows": rows(size)}
            response = http.post(f"/api/1/clients/{client_id}/datasources", json=body)
            response.raise_for_status()
            sources[size] = response.json()["id"]
        samples: dict[str, list[float]] = {}
        for _ in range(3):  # warm up
            for source_id in sources.values():
                http.get(f"/api/1/datasources/{source_id}/rows?limit=50").raise_for_status()
        # Small and large alternate, so a busy moment of the machine weighs on both alike.
        for _ in range(repeat):
            for where in ("start", "middle", "end"):
                for size, source_id in sources.items():
                    offset = {"start": 0, "middle": size // 2, "end": size - 50}[where]
                    started = time.perf_counter()
                    http.get(
                        f"/api/1/datasources/{source_id}/rows?limit=50&offset={offset}"
                    ).raise_for_status()
                    samples.setdefault(f"{size} {where}", []).append(time.perf_counter() - started)
    results = {key: statistics.median(values) for key, values in samples.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    repeat = 15 if args.quick else 60
    server = os.environ.get("TENANTRY_BENCH_DATABASE_URL", DEFAULT_POSTGRES)
    databases: list[tuple[str, AbstractContextManager[Database]]] = [("sqlite", sqlite_database())]
    if not args.no_postgres and postgres_reachable(server):
        databases.append(("postgresql", postgres_database(server)))
    summary = []
    for name, context in databases:
        with context as database:
            results = measure(database, repeat)
        for key, seconds in results.items():
            print(f"{name:10s} {key:14s} median {seconds * 1000:7.2f} ms ({repeat} runs)")
        ratio = max(results[f"50000 {w}"] / results[f"50 {w}"] for w in ("start", "middle", "end"))
        small = results["50 middle"] * 1000
        large = results["50000 middle"] * 1000
        summary.append(
            f"{name}: 50 rows {small:.2f} ms, 50k rows {large:.2f} ms, worst 50k/50 ratio={ratio:.2f}"
        )
    print("GET /rows?limit=50 | " + " | ".join(summary) + " (goal: ratio close to 1)")


if __name__ == "__main__":
    main()

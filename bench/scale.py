"""Cost must not grow with the number of clients: 1,000 against 100,000 clients under one partner.

For each database (SQLite; PostgreSQL when reachable), builds a partner with N clients in every
status (bulk inserts, counters set to match), then measures through the real app the median
latency of an allocation change (`PATCH /api/1/clients/{id}`) and of the first page of the list
with its trial fields (`GET /api/1/clients?limit=50`). Prints the 100k/1k ratio of each (goal
≤ 1.5); figures on the last line.

    .venv/bin/python bench/scale.py [--quick] [--postgres URL] [--no-postgres] [--repeat 200]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import insert, text, update
from support import (
    DEFAULT_POSTGRES,
    client_row,
    median_seconds,
    postgres_database,
    postgres_reachable,
    sqlite_database,
)

from tenantry.app import create_app
from tenantry.clock import FakeClock
from tenantry.db.models import Client, Partner
from tenantry.db.session import Database
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
STATUSES = ("setup", "trial", "active", "disabled")


def populate(database: Database, clients: int) -> tuple[str, int]:
    """A partner with `clients` clients, a quarter in each status; returns its key and a trial client."""
    with database.session(write=True) as db:
        created = create_partner(
            db, FakeClock(NOW - timedelta(days=60)), name="Scale", admin_email="scale@bench.test",
            plan=PartnerPlan(), admin_password="bench-password",
        )  # fmt: skip
        db.commit()
    rows = []
    allocated = {"dashboards": 0, "users": 0}
    for n in range(1, clients + 1):
        status = STATUSES[n % 4]
        at = NOW - timedelta(days=30, minutes=n % 20_000)
        counted = status in ("trial", "active")
        rows.append(client_row(n, created.partner_id, at, status, dashboards=2, users=3))
        if counted:
            allocated["dashboards"] += 2
            allocated["users"] += 3
    with database.session(write=True) as db:
        for start in range(0, len(rows), 20_000):
            db.execute(insert(Client), rows[start : start + 20_000])
        db.execute(
            update(Partner)
            .where(Partner.id == created.partner_id)
            .values(
                client_count=clients,
                allocated_dashboards=allocated["dashboards"],
                allocated_users=allocated["users"],
            )
        )
        db.commit()
    with database.engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    trial_client = next(r["id"] for r in rows if r["status"] == "trial")
    return created.api_key, trial_client


def measure(database: Database, clients: int, repeat: int) -> tuple[float, float]:
    key, client_id = populate(database, clients)
    settings = Settings(database_url=database.url, _env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, clock=FakeClock(NOW), database=database)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as http:
        flip = iter(range(10**9))

        def allocation_change() -> None:
            response = http.patch(
                f"/api/1/clients/{client_id}",
                json={"resources": {"dashboards": 2 + next(flip) % 2}},
                headers=headers,
            )
            assert response.status_code == 200, response.text

        def first_page() -> None:
            response = http.get("/api/1/clients?limit=50", headers=headers)
            assert response.status_code == 200 and len(response.json()["items"]) == 50, response.text
            assert response.json()["total"] == clients

        patch_s = median_seconds(repeat, allocation_change)
        list_s = median_seconds(repeat, first_page)
    return patch_s, list_s


def run(name: str, make_database, sizes: tuple[int, int], repeat: int) -> str:  # type: ignore[no-untyped-def]
    small, large = sizes
    figures = {}
    for size in sizes:
        with make_database() as database:
            figures[size] = measure(database, size, repeat)
        patch_s, list_s = figures[size]
        print(
            f"{name} {size:>7} clients: PATCH {patch_s * 1000:.2f} ms, list {list_s * 1000:.2f} ms",
            file=sys.stderr,
        )
    patch_ratio = figures[large][0] / figures[small][0]
    list_ratio = figures[large][1] / figures[small][1]
    return (
        f"{name}: allocation change {figures[small][0] * 1000:.2f}->{figures[large][0] * 1000:.2f} ms "
        f"ratio={patch_ratio:.2f}, list {figures[small][1] * 1000:.2f}->{figures[large][1] * 1000:.2f} ms "
        f"ratio={list_ratio:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 against 10,000 clients")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_POSTGRES)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sizes = (1_000, 10_000 if args.quick else 100_000)
    results = [run("sqlite", sqlite_database, sizes, args.repeat)]
    if args.no_postgres:
        pass
    elif postgres_reachable(args.postgres):
        results.append(run("postgresql", lambda: postgres_database(args.postgres), sizes, args.repeat))
    else:
        print(f"PostgreSQL at {args.postgres} not reachable: measured SQLite only", file=sys.stderr)
    print(f"{sizes[1]}/{sizes[0]} clients | " + " | ".join(results))


if __name__ == "__main__":
    main()

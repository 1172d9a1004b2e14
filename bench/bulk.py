"""Bulk onboarding against one call at a time, on PostgreSQL (SPEC §15).

In a fresh database (created and dropped), through the real app in-process:
- importing N clients from one CSV file (`POST /api/1/clients/import`) against N
  `POST /api/1/clients` calls making the same clients (goal: the import ≥ 10× faster);
- deploying a 12-klip, 3-source template to N/10 clients (`POST /api/1/templates/{id}/deploy`)
  against creating the same sources and dashboard through the API, client by client (goal ≥ 5×).

    .venv/bin/python bench/bulk.py [--quick]      # N = 10,000, or 1,000 with --quick

TENANTRY_BENCH_DATABASE_URL names the server (default postgresql://postgres@127.0.0.1:5432/postgres).
Last line: `bulk: import X× faster (A s vs B s), deploy Y× faster (C s vs D s)`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from support import DEFAULT_POSTGRES, postgres_database

from tenantry.app import create_app
from tenantry.clock import FakeClock
from tenantry.db.session import Database
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RESOURCES = {"dashboards": 2, "users": 2, "published_links": 0, "api_calls_per_day": 100}
ROWS = [{"month": m, "region": r, "sales": s} for m, r, s in (("Jan", "North", 120), ("Feb", "South", 80))]
SOURCES = [{"ref": f"s{n}", "name": f"Source {n}", "kind": "inline", "rows": ROWS} for n in range(3)]
KINDS = [
    {"kind": "value", "columns": {"value": "sales"}},
    {"kind": "bar", "columns": {"x": "month", "y": "sales"}},
    {"kind": "line", "columns": {"x": "month", "y": "sales"}},
    {"kind": "pie", "columns": {"label": "region", "value": "sales"}},
]
KLIPS = [{"title": f"Klip {n}", **KINDS[n % 4], "datasource_ref": f"s{n % 3}"} for n in range(12)]


def new_partner(database: Database, name: str) -> dict[str, str]:
    with database.session(write=True) as db:
        created = create_partner(
            db, FakeClock(NOW), name=name, admin_email=f"{name.lower()}@bench.test", plan=PartnerPlan(),
            admin_password="bench-password",
        )  # fmt: skip
        db.commit()
    return {"Authorization": f"Bearer {created.api_key}"}


def timed(work: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def one_by_one(http: TestClient, headers: dict[str, str], clients: int) -> list[int]:
    ids = []
    for n in range(clients):
        body = {"name": f"Client {n}", "external_id": f"C-{n}", "status": "trial", "resources": RESOURCES}
        response = http.post("/api/1/clients", json=body, headers=headers)
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    return ids


def imported(http: TestClient, headers: dict[str, str], clients: int) -> list[int]:
    lines = ["name,external_id,status,dashboards,users,published_links,api_calls_per_day"]
    lines += [f"Client {n},C-{n},trial,2,2,0,100" for n in range(clients)]
    response = http.post(
        "/api/1/clients/import",
        content=("\n".join(lines) + "\n").encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text[:500]
    return [row["client_id"] for row in response.json()["rows"]]


def content_by_hand(http: TestClient, headers: dict[str, str], client_ids: list[int]) -> None:
    for client_id in client_ids:
        refs = {}
        for source in SOURCES:
            body = {k: v for k, v in source.items() if k != "ref"}
            response = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=headers)
            assert response.status_code == 201, response.text
            refs[source["ref"]] = response.json()["id"]
        klips = [
            {
                **{k: v for k, v in klip.items() if k != "datasource_ref"},
                "datasource_id": refs[klip["datasource_ref"]],
            }
            for klip in KLIPS
        ]
        response = http.post(
            f"/api/1/clients/{client_id}/dashboards",
            json={"name": "Overview", "klips": klips},
            headers=headers,
        )
        assert response.status_code == 201, response.text


def deployed(http: TestClient, headers: dict[str, str], client_ids: list[int]) -> None:
    template = {
        "name": "Starter",
        "datasources": SOURCES,
        "dashboards": [{"name": "Overview", "klips": KLIPS}],
    }
    response = http.post("/api/1/templates", json=template, headers=headers)
    assert response.status_code == 201, response.text
    template_id = response.json()["id"]
    for start in range(0, len(client_ids), 1000):  # the deploy request names at most 1,000 clients
        response = http.post(
            f"/api/1/templates/{template_id}/deploy",
            json={"client_ids": client_ids[start : start + 1000]},
            headers=headers,
        )
        assert response.status_code == 200, response.text[:500]
        assert not response.json()["skipped"], response.json()["skipped"][:3]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 clients (100 for the deploy)")
    args = parser.parse_args()
    clients = 1_000 if args.quick else 10_000
    deploy_to = clients // 10
    server = os.environ.get("TENANTRY_BENCH_DATABASE_URL", DEFAULT_POSTGRES)
    with postgres_database(server) as database:
        settings = Settings(database_url=database.url, _env_file=None)  # type: ignore[call-arg]
        app = create_app(settings, clock=FakeClock(NOW), database=database)
        with TestClient(app) as http:
            by_hand, bulk = new_partner(database, "ByHand"), new_partner(database, "Bulk")
            api_s, hand_ids = timed(lambda: one_by_one(http, by_hand, clients))
            print(f"{clients} POST /api/1/clients: {api_s:.2f} s", file=sys.stderr)
            import_s, bulk_ids = timed(lambda: imported(http, bulk, clients))
            print(f"import of {clients} clients: {import_s:.2f} s", file=sys.stderr)
            hand_s, _ = timed(lambda: content_by_hand(http, by_hand, hand_ids[:deploy_to]))
            print(f"12 klips, 3 sources by hand to {deploy_to} clients: {hand_s:.2f} s", file=sys.stderr)
            deploy_s, _ = timed(lambda: deployed(http, bulk, bulk_ids[:deploy_to]))
            print(f"template deployed to {deploy_to} clients: {deploy_s:.2f} s", file=sys.stderr)
    print(
        f"bulk: import {api_s / import_s:.1f}× faster "
        f"({import_s:.2f} s vs {api_s:.2f} s, {clients} clients), "
        f"deploy {hand_s / deploy_s:.1f}× faster ({deploy_s:.2f} s vs {hand_s:.2f} s, {deploy_to} clients)"
    )


if __name__ == "__main__":
    main()

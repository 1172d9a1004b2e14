"""Pool checks serialise per partner: concurrent requests never oversubscribe the pool (SPEC §6).

A real server (uvicorn on loopback, its own thread pool and connection pool) takes 50 allocation
changes at once against a pool with room for 10. On PostgreSQL the partner row lock does the work;
on SQLite the immediate write transaction does.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from tenantry.db.models import Client, Partner


def test_fifty_concurrent_allocations_against_room_for_ten_let_exactly_ten_through(
    server_url, make_partner, db
):
    partner = make_partner(dashboards=10, users=100)
    with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
        ids = [
            http.post("/api/1/clients", json={"name": f"C{n}", "status": "trial"}).json()["id"]
            for n in range(50)
        ]

        remaining_seen: list[int] = []
        stop = threading.Event()

        def watch_pool() -> None:
            with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as watcher:
                while not stop.is_set():
                    remaining_seen.append(
                        watcher.get("/api/1/partner").json()["pool"]["dashboards"]["remaining"]
                    )

        def allocate(client_id: int) -> tuple[int, str | None]:
            with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as own:
                response = own.patch(f"/api/1/clients/{client_id}", json={"resources": {"dashboards": 1}})
                code = response.json().get("code") if response.status_code != 200 else None
                return response.status_code, code

        watcher = threading.Thread(target=watch_pool)
        watcher.start()
        try:
            with ThreadPoolExecutor(max_workers=50) as pool:
                outcomes = Counter(pool.map(allocate, ids))
        finally:
            stop.set()
            watcher.join()

        assert outcomes == {(200, None): 10, (409, "pool_exhausted"): 40}
        assert remaining_seen, "the pool was never observed during the run"
        assert min(remaining_seen) >= 0
        final = http.get("/api/1/partner").json()["pool"]["dashboards"]
        assert final == {"total": 10, "used_by_partner": 0, "allocated": 10, "remaining": 0}

    # The counter on the partner agrees with the clients' own allocations.
    assert db.scalar(select(func.sum(Client.alloc_dashboards)).where(Client.partner_id == partner.id)) == 10
    assert db.get(Partner, partner.id).allocated_dashboards == 10

"""The daily API-call meter across processes: exact, and how much it costs.

A real server (uvicorn, 2 worker processes, on 127.0.0.1) and 8 client processes hammering one
client key whose daily allocation is 1,000 calls: once with the Redis counter and once with the
database counter. For each it prints how many calls were allowed (must be exactly 1,000) and the
throughput of the metered call (`GET /api/1/me` with the client key) against the same call made
unmetered in the same run (a partner key on an unlimited plan). The burst limit is lifted here:
it is the daily counter that is measured.

    .venv/bin/python bench/meter.py [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

LIMIT = 1000
PROCESSES = 8
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def prepare(database_url: str) -> tuple[str, str, str]:
    """A partner on an unlimited plan (its key is not metered) and an active client with a key."""
    from tenantry.auth.principal import Principal
    from tenantry.clients.schemas import ClientCreate, Resources
    from tenantry.clients.service import create_client
    from tenantry.clock import SystemClock
    from tenantry.db.migrate import upgrade
    from tenantry.db.session import Database
    from tenantry.mail import LogMailer
    from tenantry.partners.service import PartnerPlan, create_partner
    from tenantry.users.schemas import ClientUserCreate
    from tenantry.users.service import Inviter, add_client_user, create_key_for_client_user

    upgrade(database_url)
    database = Database(database_url)
    clock = SystemClock()
    with database.session(write=True) as db:
        partner = create_partner(
            db,
            clock,
            name="Bench",
            admin_email="bench@bench.test",
            plan=PartnerPlan(),
            admin_password="x" * 12,
        )
        admin = Principal("partner_user", partner.partner_id, partner.admin_user_id, "admin")

        def client_key(name: str, limit: int) -> str:
            resources = Resources(dashboards=1, users=1, api_calls_per_day=limit)
            client = create_client(
                db, clock, admin, ClientCreate(name=name, status="active", resources=resources)
            )
            body = ClientUserCreate(email=f"{name.lower()}@bench.test", name=name, password="y" * 12)
            user, _ = add_client_user(db, clock, Inviter(LogMailer(), ""), admin, client.id, body)
            return create_key_for_client_user(db, clock, admin, client.id, user.id, "bench")[1]

        hammered = client_key("Hammered", LIMIT)
        # Another client warms the metered path up without touching the hammered client's quota.
        warm_up = client_key("Warm", 1_000_000)
        db.commit()
    database.dispose()
    return partner.api_key, hammered, warm_up


def hammer(port: int, key: str, calls: int, barrier: Any, results: Any) -> None:
    counts: dict[int, int] = {}
    with httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        http.get("/healthz")
        barrier.wait()
        for _ in range(calls):
            status = http.get("/api/1/me").status_code
            counts[status] = counts.get(status, 0) + 1
    results.put(counts)


def phase(port: int, key: str, calls_each: int) -> tuple[dict[int, int], float]:
    """All processes call at once; returns the answers by status and the calls per second."""
    barrier = mp.Barrier(PROCESSES + 1)
    results: Any = mp.Queue()
    workers = [
        mp.Process(target=hammer, args=(port, key, calls_each, barrier, results)) for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    totals: dict[int, int] = {}
    for _ in workers:
        for status, n in results.get().items():
            totals[status] = totals.get(status, 0) + n
    elapsed = time.perf_counter() - started
    for worker in workers:
        worker.join()
    return totals, sum(totals.values()) / elapsed


def run(mode: str, redis_url: str | None, calls_each: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{Path(folder) / 'bench.db'}"
        partner_key, client_key, warm_up_key = prepare(database_url)
        port = free_port()
        env = {
            **os.environ,
            "TENANTRY_DATABASE_URL": database_url,
            "TENANTRY_SECRET_KEY": "bench-" + "k" * 40,
            "TENANTRY_API_BURST_PER_SECOND": "1000000",
            "TENANTRY_LOG_LEVEL": "WARNING",
        }
        env.pop("TENANTRY_REDIS_URL", None)
        if redis_url:
            env["TENANTRY_REDIS_URL"] = redis_url
        server = subprocess.Popen(
            [
                sys.executable, "-m", "uvicorn", "tenantry.app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(port), "--workers", "2",
                "--no-access-log", "--log-level", "warning",
            ],
            env=env,
            cwd=folder,
        )  # fmt: skip
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            # Both paths are exercised once on every worker before anything is timed.
            phase(port, partner_key, 25)
            phase(port, warm_up_key, 25)
            _, unmetered = phase(port, partner_key, calls_each)
            answers, metered = phase(port, client_key, calls_each)
        finally:
            server.terminate()
            server.wait(timeout=30)
    allowed = answers.get(200, 0)
    other = {s: n for s, n in answers.items() if s not in (200, 429)}
    print(
        f"{mode:>8}: allowed {allowed} of {sum(answers.values())} calls (limit {LIMIT}), "
        f"refused {answers.get(429, 0)}{f', other {other}' if other else ''}; "
        f"metered {metered:.0f}/s vs unmetered {unmetered:.0f}/s = {metered / unmetered:.2f}",
        flush=True,
    )
    return allowed, metered / unmetered


def redis_reachable(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        with Redis.from_url(url, socket_connect_timeout=1) as client:
            client.flushdb()
        return True
    except RedisError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (150 per process instead of 400)")
    args = parser.parse_args()
    calls_each = 150 if args.quick else 400
    redis_url = os.environ.get("TENANTRY_REDIS_URL") or DEFAULT_REDIS
    figures = []
    if redis_reachable(redis_url):
        allowed, ratio = run("redis", redis_url, calls_each)
        figures.append(f"redis allowed={allowed} ratio={ratio:.2f}")
    else:
        figures.append(f"redis not reachable at {redis_url}: skipped")
    allowed, ratio = run("database", None, calls_each)
    figures.append(f"database allowed={allowed} ratio={ratio:.2f}")
    goal = f"goal: allowed={LIMIT}, ratio>=0.8"
    print(f"meter ({PROCESSES} processes, limit {LIMIT}, {goal}): " + "; ".join(figures))


if __name__ == "__main__":
    main()

"""Scheduled refreshes on PostgreSQL with 1 and with 4 `tenantry worker` processes.

    .venv/bin/python bench/scheduler.py [--quick] [--sources N] [--database-url URL]

Builds a fresh database on the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/,
or TENANTRY_BENCH_DATABASE_URL) with N url data sources (refresh every hour) spread evenly over
clients in every status (setup, trial, expired trial, active, disabled), served by a local HTTP
server in its own process. For each worker count it makes every source due at once and times
how long the workers take to refresh all the sources that may refresh (Trial and Active):
refreshes per second, scheduling lag p50/p99 (from due to refreshed, under that full backlog),
and how many refreshes touched a Setup, Disabled or expired source (must be 0). The LAST line
gives the 4-worker/1-worker throughput ratio (goal >= 1.7 on 2 cores, >= 3 where cores allow).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from tenantry.clock import SystemClock
from tenantry.db.dashboard_models import DataSource
from tenantry.db.migrate import upgrade
from tenantry.db.models import Client
from tenantry.db.session import Database
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings

STATUSES = ("setup", "trial", "trial_expired", "active", "disabled")
ELIGIBLE = ("trial", "active")
SOURCES_PER_CLIENT = 20
DEFAULT_SOURCES = 4000
QUICK_SOURCES = 1000
DEFAULT_LATENCY_MS = 20.0
BODY = b"month,sales\nJan,120\nFeb,80\nMar,150\n"


def serve_data(port_queue: Any, latency: float) -> None:
    """The data server: any `/<status>/<n>.csv` answers a small CSV after `latency` seconds (the
    round trip to a real source elsewhere); `/_hits` counts the requests by status."""
    hits: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/_hits":
                body = json.dumps(hits).encode()
            else:
                status = self.path.split("/")[1]
                hits[status] = hits.get(status, 0) + 1
                body = BODY
                time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def build(url: str, base: str, sources: int) -> dict[str, int]:
    """One partner, clients in every status, `sources` url sources spread evenly over them."""
    database = Database(url)
    now = datetime.now(UTC)
    far = now + timedelta(days=365)
    with database.session(write=True) as db:
        partner = create_partner(
            db, SystemClock(), name="Bench", admin_email="bench@bench.test", plan=PartnerPlan()
        )
        db.commit()
    clients_needed = max(len(STATUSES), sources // SOURCES_PER_CLIENT)
    by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
    with database.engine.begin() as conn:
        rows = []
        for n in range(clients_needed):
            status = STATUSES[n % len(STATUSES)]
            stored = "trial" if status == "trial_expired" else status
            ends = now - timedelta(days=1) if status == "trial_expired" else now + timedelta(days=10)
            rows.append(
                {
                    "partner_id": partner.partner_id,
                    "name": f"{status} {n}",
                    "description": "",
                    "status": stored,
                    "trial_started_at": ends - timedelta(days=14) if stored == "trial" else None,
                    "trial_ends_at": ends if stored == "trial" else None,
                    "created_at": now,
                    "status_changed_at": now,
                }
            )
        conn.execute(insert(Client), rows)
        clients = conn.execute(select(Client.id, Client.name).order_by(Client.id)).all()
        source_rows = []
        for n in range(sources):
            client_id, name = clients[n % len(clients)]
            status = name.split(" ")[0]
            by_status[status] += 1
            source_rows.append(
                {
                    "partner_id": partner.partner_id,
                    "client_id": client_id,
                    "name": f"s{n}",
                    "kind": "url",
                    "url": f"{base}/{status}/{n}.csv",
                    "format": "csv",
                    "refresh_interval": 3600,
                    "next_refresh_at": far,
                    "rows": [],
                    "row_count": 0,
                    "version": "",
                    "refresh_fail_count": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        conn.execute(insert(DataSource), source_rows)
    database.dispose()
    return by_status


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run(url: str, workers: int, eligible: int, hits_url: str) -> dict[str, Any]:
    database = Database(url)
    engine = database.engine
    with engine.begin() as conn:  # nothing due while the workers start
        conn.execute(
            update(DataSource).values(
                next_refresh_at=datetime.now(UTC) + timedelta(days=365),
                last_refreshed_at=None,
                lease_owner=None,
                lease_expires_at=None,
            )
        )
    # The data server listens on loopback, which the outgoing-request guard opens only on purpose.
    env = {**os.environ, "TENANTRY_DATABASE_URL": url, "TENANTRY_OUTBOUND_ALLOW": "127.0.0.1"}
    env.pop("TENANTRY_SMTP_HOST", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "worker", "--batch", "10", "--poll-seconds", "0.2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    time.sleep(4)  # let every worker import and connect before the clock starts
    due = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(DataSource).values(next_refresh_at=due))
    started = time.perf_counter()
    refreshed_eligible = 0
    while refreshed_eligible < eligible:
        time.sleep(0.2)
        with engine.connect() as conn:
            refreshed_eligible = conn.scalar(
                select(func.count()).select_from(DataSource).where(DataSource.last_refreshed_at.is_not(None))
            )
        if time.perf_counter() - started > 600:
            break
    elapsed = time.perf_counter() - started
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)
    with engine.connect() as conn:
        lags = [
            (at - due).total_seconds()
            for (at,) in conn.execute(
                select(DataSource.last_refreshed_at).where(DataSource.last_refreshed_at.is_not(None))
            )
        ]
    database.dispose()
    import httpx

    hits = httpx.get(hits_url).json()
    return {
        "workers": workers,
        "refreshed": refreshed_eligible,
        "rate": refreshed_eligible / elapsed,
        "p50": percentile(lags, 0.50),
        "p99": percentile(lags, 0.99),
        "forbidden": sum(hits.get(s, 0) for s in STATUSES if s not in ELIGIBLE),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SOURCES} sources")
    parser.add_argument("--sources", type=int, help=f"data sources (default {DEFAULT_SOURCES})")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=DEFAULT_LATENCY_MS,
        help=f"the data server's delay, standing in for a remote source (default {DEFAULT_LATENCY_MS:g})",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "TENANTRY_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    sources = args.sources or (QUICK_SOURCES if args.quick else DEFAULT_SOURCES)

    server_url = make_url(Settings(database_url=args.database_url).sqlalchemy_url)
    name = f"tenantry_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name).render_as_string(hide_password=False)
    ports: Any = multiprocessing.Queue()
    data = multiprocessing.Process(target=serve_data, args=(ports, args.latency_ms / 1000), daemon=True)
    data.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    try:
        upgrade(url)
        by_status = build(url, base, sources)
        eligible = sum(by_status[s] for s in ELIGIBLE)
        print(f"{sources} sources: {by_status}; {eligible} may refresh (Trial and Active)")
        print(f"the data server answers after {args.latency_ms:g} ms")
        results = []
        for workers in (1, 4):
            result = run(url, workers, eligible, base + "/_hits")
            results.append(result)
            print(
                f"{workers} worker(s): {result['refreshed']} refreshed at {result['rate']:.0f}/s, "
                f"lag p50 {result['p50']:.1f}s p99 {result['p99']:.1f}s, "
                f"Setup/Disabled/expired refreshes so far {result['forbidden']}"
            )
    finally:
        data.terminate()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    one, four = results
    note = (
        "" if sources >= 10_000 else f"; {sources} sources, not 10,000: run --sources 10000 for the full size"
    )
    print(
        f"scheduler: 1 worker {one['rate']:.0f}/s (lag p50 {one['p50']:.1f}s p99 {one['p99']:.1f}s), "
        f"4 workers {four['rate']:.0f}/s (lag p50 {four['p50']:.1f}s p99 {four['p99']:.1f}s), "
        f"ratio 4w/1w {four['rate'] / one['rate']:.2f} (goal >= 1.7 on 2 cores), "
        f"Setup/Disabled/expired refreshes {four['forbidden']} (must be 0), "
        f"source latency {args.latency_ms:g} ms{note}"
    )


if __name__ == "__main__":
    main()

"""Refreshing API sources (bearer auth, 3 pages of JSON) against plain CSV sources of the same size.

    .venv/bin/python bench/connectors.py [--quick] [--sources N] [--database-url URL] [--direct]

Builds a fresh database on the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/,
or TENANTRY_BENCH_DATABASE_URL; dropped at the end) with N sources of 1,000 records each, owned by
Active clients, served by a local HTTP server in its own process:

- `api`: JSON behind `Authorization: Bearer …` (the token sealed by the vault like any secret),
  1,000 records over 3 pages (`page_param`, records picked by JMESPath `items`);
- `csv`: the same 1,000 rows as one CSV page, no auth.

For each kind it makes every source due at once and times how long 4 `tenantry worker` processes
take to refresh them all: refreshes per second. It also times opening a sealed secret (what each
refresh of the api source adds) against one api refresh made in this process (`fetch_source`,
no database), so the share is of the fetch alone, the smallest a refresh can be.

`--direct` skips the workers and the database: 4 processes call `fetch_source` on every source.
The LAST line: `connectors: api X/s csv Y/s ratio R decrypt D µs (P% of a refresh)`
(goals: ratio >= 0.7, P <= 1).
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
import timeit
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from tenantry.clock import SystemClock
from tenantry.datasources.fetch import fetch_source
from tenantry.datasources.placeholders import Context
from tenantry.datasources.request import SourceRequest, open_secrets, seal_secrets
from tenantry.db.dashboard_models import DataSource
from tenantry.db.migrate import upgrade
from tenantry.db.models import Client
from tenantry.db.session import Database
from tenantry.outbound import AllowList, Guard
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings
from tenantry.vault import Vault, new_key, parse_key

DEFAULT_SOURCES = 1000
QUICK_SOURCES = 100
RECORDS = 1000
PAGES = 3
WORKERS = 4
SOURCES_PER_CLIENT = 10
TOKEN = "bench-token-" + "x" * 40
REGIONS = ["North", "South", "East", "West", "Centre", "Islands"]
LOOPBACK = Guard(AllowList.parse("127.0.0.1"))


def records(n: int) -> list[dict[str, Any]]:
    return [
        {
            "day": f"2026-{1 + i // 28 % 12:02d}-{1 + i % 28:02d}",
            "region": REGIONS[i % len(REGIONS)],
            "sales": round(1000 + 400 * ((i * 7919) % 97) / 97, 2),
            "units": (i * 31) % 50,
        }
        for i in range(n)
    ]


def serve_data(port_queue: Any) -> None:
    """`/api/<n>?page=k` (bearer token required) answers page k of the records as
    `{"items": [...]}`; `/csv/<n>.csv` answers all of them as one CSV."""
    data = records(RECORDS)
    size = -(-RECORDS // PAGES)
    pages = [json.dumps({"items": data[k * size : (k + 1) * size]}).encode() for k in range(PAGES)]
    empty = json.dumps({"items": []}).encode()
    columns = list(data[0])
    csv_body = "\n".join([",".join(columns), *(",".join(str(r[c]) for c in columns) for r in data)]).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            status, kind, body = 200, "application/json", b""
            if parts.path.startswith("/api/"):
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    status, body = 401, b"{}"
                else:
                    page = int(parse_qs(parts.query).get("page", ["1"])[0])
                    body = pages[page - 1] if 1 <= page <= PAGES else empty
            else:
                kind, body = "text/csv", csv_body
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_address[1])
    server.serve_forever()


def api_settings(base: str, n: int) -> tuple[str, dict[str, Any]]:
    config = {
        "method": "GET",
        "headers": [],
        "query": {},
        "body": None,
        "auth": {"type": "bearer"},
        "records": "items",
        "paginate": {"type": "page_param", "param": "page", "max_pages": PAGES},
    }
    return f"{base}/api/{n}", config


def api_request(base: str, n: int, context: Context | None) -> SourceRequest:
    url, config = api_settings(base, n)
    return SourceRequest(
        kind="url",
        url=url,
        format="json",
        auth={"type": "bearer", "token": TOKEN},
        records=config["records"],
        paginate=config["paginate"],
        context=context,
    )


def csv_request(base: str, n: int) -> SourceRequest:
    return SourceRequest(kind="url", url=f"{base}/csv/{n}.csv", format="csv")


def build(url: str, base: str, sources: int, kind: str, vault: Vault) -> None:
    """One partner, Active clients, `sources` sources of one kind spread over them."""
    database = Database(url)
    now = datetime.now(UTC)
    far = now + timedelta(days=365)
    with database.session(write=True) as db:
        partner = create_partner(
            db, SystemClock(), name="Bench", admin_email=f"{kind}@bench.test", plan=PartnerPlan()
        )
        db.commit()
    with database.engine.begin() as conn:
        clients = [
            {
                "partner_id": partner.partner_id,
                "name": f"{kind} {n}",
                "description": "",
                "status": "active",
                "created_at": now,
                "status_changed_at": now,
            }
            for n in range(max(1, sources // SOURCES_PER_CLIENT))
        ]
        conn.execute(insert(Client), clients)
        ids = [
            id_
            for (id_,) in conn.execute(
                select(Client.id).where(Client.partner_id == partner.partner_id).order_by(Client.id)
            )
        ]
        rows = []
        for n in range(sources):
            row: dict[str, Any] = {
                "partner_id": partner.partner_id,
                "client_id": ids[n % len(ids)],
                "name": f"{kind}{n}",
                "kind": "url",
                "refresh_interval": 3600,
                "next_refresh_at": far,
                "rows": [],
                "row_count": 0,
                "version": "",
                "refresh_fail_count": 0,
                "created_at": now,
                "updated_at": now,
            }
            if kind == "api":
                row["url"], row["config"] = api_settings(base, n)
                row["format"] = "json"
                # Each source seals its own copy, as the API does when a source is saved.
                row["secrets"] = seal_secrets({"auth.token": TOKEN}, vault)
            else:
                row["url"], row["format"] = f"{base}/csv/{n}.csv", "csv"
            rows.append(row)
        conn.execute(insert(DataSource), rows)
    database.dispose()


def run_workers(url: str, kind: str, key: str) -> tuple[int, float, int]:
    """Make every source of `kind` due and time 4 workers refreshing them: (done, seconds, failed)."""
    database = Database(url)
    engine = database.engine
    of_kind = DataSource.name.like(f"{kind}%")
    with engine.connect() as conn:
        total = conn.scalar(select(func.count()).select_from(DataSource).where(of_kind)) or 0
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": url,
        "TENANTRY_OUTBOUND_ALLOW": "127.0.0.1",
        "TENANTRY_ENCRYPTION_KEY": key,
    }
    env.pop("TENANTRY_SMTP_HOST", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "worker", "--batch", "10", "--poll-seconds", "0.2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(WORKERS)
    ]
    time.sleep(4)  # let every worker import and connect before the clock starts
    with engine.begin() as conn:
        conn.execute(update(DataSource).where(of_kind).values(next_refresh_at=datetime.now(UTC)))
    started = time.perf_counter()
    done = 0
    while done < total and time.perf_counter() - started < 900:
        time.sleep(0.2)
        with engine.connect() as conn:
            done = (
                conn.scalar(
                    select(func.count())
                    .select_from(DataSource)
                    # A failed refresh counts as done too (it is reported below), so a
                    # refused token shows as failures rather than as a bench that never ends.
                    .where(
                        of_kind,
                        DataSource.last_refreshed_at.is_not(None) | (DataSource.refresh_fail_count > 0),
                    )
                )
                or 0
            )
    elapsed = time.perf_counter() - started
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)
    with engine.connect() as conn:
        failed = (
            conn.scalar(
                select(func.count())
                .select_from(DataSource)
                .where(of_kind, (DataSource.last_error.is_not(None)) | (DataSource.row_count != RECORDS))
            )
            or 0
        )
        errors = conn.execute(
            select(DataSource.last_error).where(of_kind, DataSource.last_error.is_not(None)).limit(3)
        ).all()
    if errors:
        print(f"{kind}: some errors: {[e for (e,) in errors]}")
    database.dispose()
    return done, elapsed, failed


def _direct_share(args: tuple[str, str, list[int]]) -> int:
    base, kind, numbers = args
    context = Context(client_id=1, external_id=None, name="Bench", properties={})
    for n in numbers:
        req = api_request(base, n, context) if kind == "api" else csv_request(base, n)
        rows = fetch_source(req, guard=LOOPBACK)
        assert len(rows) == RECORDS, len(rows)
    return len(numbers)


def run_direct(base: str, kind: str, sources: int) -> tuple[int, float, int]:
    shares = [(base, kind, list(range(w, sources, WORKERS))) for w in range(WORKERS)]
    with multiprocessing.Pool(WORKERS) as pool:
        started = time.perf_counter()
        done = sum(pool.map(_direct_share, shares))
        elapsed = time.perf_counter() - started
    return done, elapsed, 0


def worker_is_wired() -> bool:
    """Whether the worker refreshes through `fetch_source` (with the vault) yet."""
    import inspect

    import tenantry.worker.loop as loop

    return "fetch_source" in inspect.getsource(loop)


def decrypt_and_refresh(base: str, vault: Vault) -> tuple[float, float]:
    """Seconds to open one sealed secret (as a refresh does), and one api fetch in this process."""
    sealed = seal_secrets({"auth.token": TOKEN}, vault)
    rounds = 2000
    decrypt = min(timeit.repeat(lambda: open_secrets(sealed, vault), number=rounds, repeat=5)) / rounds
    context = Context(client_id=1, external_id=None, name="Bench", properties={})
    req = api_request(base, 0, context)
    fetch_source(req, guard=LOOPBACK)  # warm up
    refresh = min(timeit.repeat(lambda: fetch_source(req, guard=LOOPBACK), number=5, repeat=5)) / 5
    return decrypt, refresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SOURCES} sources")
    parser.add_argument("--sources", type=int, help=f"sources of each kind (default {DEFAULT_SOURCES})")
    parser.add_argument("--direct", action="store_true", help="call fetch_source in 4 processes, no workers")
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "TENANTRY_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    sources = args.sources or (QUICK_SOURCES if args.quick else DEFAULT_SOURCES)
    key = new_key()
    vault = Vault(parse_key(key))
    direct = args.direct or not worker_is_wired()
    if direct and not args.direct:
        print("the worker does not refresh through fetch_source yet: measuring fetch_source directly")

    ports: Any = multiprocessing.Queue()
    data = multiprocessing.Process(target=serve_data, args=(ports,), daemon=True)
    data.start()
    base = f"http://127.0.0.1:{ports.get(timeout=30)}"
    rates: dict[str, float] = {}
    try:
        if direct:
            print(f"{sources} sources of each kind, fetch_source in {WORKERS} processes (no database)")
            for kind in ("api", "csv"):
                done, elapsed, _ = run_direct(base, kind, sources)
                rates[kind] = done / elapsed
                print(f"{kind}: {done} fetched in {elapsed:.1f}s, {rates[kind]:.1f}/s")
        else:
            server_url = make_url(Settings(database_url=args.database_url).sqlalchemy_url)
            name = f"tenantry_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = server_url.set(database=name).render_as_string(hide_password=False)
            try:
                upgrade(url)
                for kind in ("api", "csv"):
                    build(url, base, sources, kind, vault)
                print(f"{sources} sources of each kind on PostgreSQL, {WORKERS} worker processes")
                for kind in ("api", "csv"):
                    done, elapsed, failed = run_workers(url, kind, key)
                    rates[kind] = done / elapsed
                    print(f"{kind}: {done} refreshed in {elapsed:.1f}s, {rates[kind]:.1f}/s, {failed} failed")
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        decrypt, refresh = decrypt_and_refresh(base, vault)
    finally:
        data.terminate()
    share = 100 * decrypt / refresh
    print(
        f"one api fetch in this process: {refresh * 1000:.1f} ms; opening its secret: {decrypt * 1e6:.1f} µs"
    )
    print(
        f"connectors: api {rates['api']:.1f}/s csv {rates['csv']:.1f}/s "
        f"ratio {rates['api'] / rates['csv']:.2f} decrypt {decrypt * 1e6:.1f} µs ({share:.2f}% of a refresh)"
    )


if __name__ == "__main__":
    main()

"""A month's statement for many clients, against one `SELECT count(*)` over status_changes.

Builds a partner with 10,000 clients (1,000 with --quick), each with 10 status changes and
3 allocation changes around March 2026, inserted in bulk; then times the March statement (its
queries and the computation; best wall-clock time, and CPU time of this process and of PostgreSQL's
server process when it runs here) and a plain count over the status-change table in the same run,
on SQLite and, with --postgres URL, on PostgreSQL (where the database counts the billable days; a
partner this large has its lines counted in two halves, on two connections of their own, whose
server processes' CPU is not in the CPU figure).
With --baseline it also times the statement computed the way SQLite computes it (every history
read, the days counted in Python, as both databases did before PostgreSQL counted them) and prints
the ratio. Figures on the last line.

    .venv/bin/python bench/statements.py [--quick] [--baseline] [--postgres postgresql://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session
from support import client_row, postgres_database, sqlite_database

from tenantry.clock import FakeClock
from tenantry.db.models import AllocationChange, Client, StatusChange
from tenantry.db.session import Database
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.statements.service import month_report, statement_for

MONTH = "2026-03"
NOW = datetime(2026, 4, 15, tzinfo=UTC)
# Ten changes per client: creation in Setup, then every transition the product allows, in turn.
PATH = [
    "setup",
    "trial",
    "active",
    "disabled",
    "active",
    "disabled",
    "active",
    "disabled",
    "active",
    "disabled",
]


def populate(database: Database, clients: int) -> int:
    with database.session(write=True) as db:
        partner = create_partner(
            db,
            FakeClock(datetime(2026, 1, 1, tzinfo=UTC)),
            name="Bench",
            admin_email=f"bench-{uuid.uuid4().hex[:8]}@bench.test",
            plan=PartnerPlan(),
            timezone="Europe/Paris",
            admin_password="bench-password",
        )
        db.commit()
    partner_id = partner.partner_id
    rng = random.Random(7)
    client_rows, status_rows, allocation_rows = [], [], []
    for client_id in range(1, clients + 1):
        at = datetime(2026, 2, 20, tzinfo=UTC) + timedelta(minutes=rng.randrange(14 * 24 * 60))
        client_rows.append(client_row(client_id, partner_id, at, PATH[-1], dashboards=3, users=5))
        allocation_at = [
            at,
            at + timedelta(days=rng.randrange(1, 20)),
            at + timedelta(days=rng.randrange(20, 40)),
        ]
        for n, when in enumerate(allocation_at):
            allocation_rows.append(
                {
                    "partner_id": partner_id,
                    "client_id": client_id,
                    "at": when,
                    "dashboards": 1 + n,
                    "users": 1 + 2 * n,
                    "published_links": 0,
                    "api_calls_per_day": 0,
                }
            )
        previous = None
        for status in PATH:
            status_rows.append(
                {
                    "partner_id": partner_id,
                    "client_id": client_id,
                    "from_status": previous,
                    "to_status": status,
                    "at": at,
                    "actor": "bench",
                    "reason": "",
                }
            )
            previous = status
            at += timedelta(minutes=rng.randrange(60, 5 * 24 * 60))
    with database.session(write=True) as db:
        for table, rows in (
            (Client, client_rows),
            (StatusChange, status_rows),
            (AllocationChange, allocation_rows),
        ):
            for start in range(0, len(rows), 20_000):
                db.execute(insert(table), rows[start : start + 20_000])
        db.commit()
    if not database.is_sqlite:
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return partner_id


def best_of(repeat: int, work: Callable[[], object]) -> float:
    work()  # warm caches and connections
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def cpu_of(repeat: int, work: Callable[[], object], backend: int | None) -> float:
    """CPU seconds a run takes, this process's and (PostgreSQL on this machine) its server process's:
    a figure a busy machine inflates far less than the wall-clock time."""

    def server_ticks() -> int:
        if backend is None:
            return 0
        try:
            with open(f"/proc/{backend}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # the server runs elsewhere: this process's time only
            return 0
        return int(fields[11]) + int(fields[12])  # utime + stime

    work()
    process, server = time.process_time(), server_ticks()
    for _ in range(repeat):
        work()
    ticks = server_ticks() - server
    return (time.process_time() - process + ticks / os.sysconf("SC_CLK_TCK")) / repeat


def measure(name: str, database: Database, clients: int, repeat: int, baseline: bool) -> str:
    started = time.perf_counter()
    partner_id = populate(database, clients)
    print(f"{name}: inserted in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    # One connection throughout, so the server process whose time is read is the one doing the work.
    with database.engine.connect() as connection, Session(bind=connection) as db:
        backend = None if database.is_sqlite else db.scalar(text("SELECT pg_backend_pid()"))
        rows = db.scalar(select(func.count()).select_from(StatusChange))
        statement = statement_for(db, partner_id, MONTH, NOW)

        def one_statement() -> object:
            db.rollback()  # a fresh transaction, as a request would have
            return statement_for(db, partner_id, MONTH, NOW)

        def one_count() -> object:
            db.rollback()
            return db.scalar(select(func.count()).select_from(StatusChange))

        def one_baseline() -> object:
            db.rollback()
            # The statement as it was computed before: every history read, the days counted in
            # Python (with the days' statuses, which the statement computed as well).
            return month_report(db, partner_id, MONTH, NOW).statement

        statement_s = best_of(repeat, one_statement)
        count_s = best_of(repeat, one_count)
        statement_cpu = cpu_of(repeat, one_statement, backend)
        if baseline:
            assert one_baseline() == statement, "the baseline computes another statement"
            baseline_s = best_of(repeat, one_baseline)
            baseline_cpu = cpu_of(repeat, one_baseline, backend)
    line = (
        f"{name}: clients={clients} status_changes={rows} lines={len(statement.lines)} "
        f"total={statement.total} statement={statement_s:.3f}s (cpu {statement_cpu:.3f}s) "
        f"count={count_s * 1000:.2f}ms ratio={statement_s / count_s:.0f}x"
    )
    if baseline:
        line += (
            f" baseline={baseline_s:.3f}s (cpu {baseline_cpu:.3f}s) faster={baseline_s / statement_s:.1f}x"
            f" (cpu {baseline_cpu / statement_cpu:.1f}x)"
        )
    print(line)
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 clients instead of 10,000")
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument(
        "--baseline", action="store_true", help="also time the statement computed in Python, as before"
    )
    args = parser.parse_args()
    clients = args.clients or (1_000 if args.quick else 10_000)
    results = []
    with sqlite_database() as database:
        results.append(measure("sqlite", database, clients, args.repeat, args.baseline))
    if args.postgres:
        with postgres_database(args.postgres) as database:
            results.append(measure("postgresql", database, clients, args.repeat, args.baseline))
    print(" | ".join(results))


if __name__ == "__main__":
    main()

"""Scheduled reports on PostgreSQL with 1 and with 4 `tenantry worker` processes.

    .venv/bin/python bench/reports.py [--quick] [--schedules N] [--database-url URL]

Builds a fresh database on the PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/,
or TENANTRY_BENCH_DATABASE_URL): one Active client with a few small dashboards (two klips over a
three-row source) and N daily schedules, each to its own address, all due in the same minute. A
local aiosmtpd server in its own process takes the e-mails and writes one line per recipient.
For each worker count the workers are started (`tenantry worker` with its defaults, but for
--batch and --concurrency), every schedule is made due at the next whole
minute, and the bench waits until the SMTP server has every report: reports per second (from the
slot to the last e-mail), the lag from the slot to the last e-mail, and how many slots were sent
twice (counted at the SMTP server: must be 0), and how many of the machine's cores were busy
meanwhile (every process: workers, PostgreSQL, the SMTP server; each run's line also shows the
cores each part kept busy and the CPU each report cost them all). The LAST line gives the figures,
the 4-worker/1-worker ratio (goal >= 1.7) and the ceiling the machine puts on that ratio (its
cores over the cores busy with one worker).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from math import ceil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import make_url
from support import cores_busy, cores_by_role, cpu_times, process_times

from tenantry.app import create_app
from tenantry.clock import SystemClock
from tenantry.db.migrate import upgrade
from tenantry.db.models import PartnerUser
from tenantry.db.report_models import ReportRun, ReportSchedule
from tenantry.db.session import Database
from tenantry.db.worker_models import OutboxMail
from tenantry.emails.service import DASHBOARD_EMAILS_PER_DAY
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.settings import Settings

DEFAULT_SCHEDULES = 10_000
QUICK_SCHEDULES = 1_000
DASHBOARDS = 5
ROWS = [
    {"month": "Jan", "region": "North", "sales": 120},
    {"month": "Feb", "region": "South", "sales": 80},
    {"month": "Mar", "region": "North", "sales": 150},
]
KLIPS = [
    {"title": "Total", "kind": "value", "columns": {"value": "sales"}},
    {"title": "By month", "kind": "bar", "columns": {"x": "month", "y": "sales"}},
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_smtp(port: int, log_path: str) -> None:
    """The SMTP server: one line per recipient of every message taken, `<recipient> <time>`."""
    from aiosmtpd.controller import Controller

    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            at = time.time()
            for recipient in envelope.rcpt_tos:
                log.write(f"{recipient} {at}\n")
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    while True:
        time.sleep(3600)


def build(url: str, schedules: int) -> None:
    """One partner, one Active client, small dashboards, `schedules` daily schedules (not yet due)."""
    folder = Path(tempfile.mkdtemp(prefix="tenantry-bench-"))
    settings = Settings(
        database_url=url,
        data_dir=folder,
        secret_key="bench-" + "x" * 40,
        _env_file=None,  # type: ignore[call-arg]
    )
    database = Database(settings.sqlalchemy_url)
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
    headers = {"Authorization": f"Bearer {created.api_key}"}
    with TestClient(app, headers=headers) as http:
        body = {"name": "Acme", "status": "active", "resources": {"dashboards": DASHBOARDS, "users": 5}}
        client_id = http.post("/api/1/clients", json=body).json()["id"]
        source = {"name": "Sales", "kind": "inline", "rows": ROWS}
        source_id = http.post(f"/api/1/clients/{client_id}/datasources", json=source).json()["id"]
        dashboard_ids = []
        for n in range(DASHBOARDS):
            made = http.post(
                f"/api/1/clients/{client_id}/dashboards",
                json={"name": f"Sales {n}", "klips": [{**k, "datasource_id": source_id} for k in KLIPS]},
            )
            made.raise_for_status()
            dashboard_ids.append(made.json()["id"])
    far = datetime.now(UTC) + timedelta(days=365)
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        # Addresses outside the account are sent for the partner editor who set them, 50 a day
        # each (SPEC §12): one editor for every 50 schedules.
        editors = (
            conn.execute(
                insert(PartnerUser).returning(PartnerUser.id),
                [
                    {
                        "partner_id": created.partner_id,
                        "email": f"editor{n}@bench.test",
                        "name": f"Editor {n}",
                        "role": "editor",
                        "password_hash": None,
                        "created_at": now,
                    }
                    for n in range(ceil(schedules / DASHBOARD_EMAILS_PER_DAY))
                ],
            )
            .scalars()
            .all()
        )
        conn.execute(
            insert(ReportSchedule),
            [
                {
                    "partner_id": created.partner_id,
                    "client_id": client_id,
                    "dashboard_id": dashboard_ids[n % DASHBOARDS],
                    "frequency": "daily",
                    "time": "00:00",
                    "timezone": "UTC",
                    "format": "pdf",
                    "recipient_user_ids": [],
                    "recipient_emails": [f"r{n}@bench.test"],
                    "subject": None,
                    "filters": {},
                    "created_by": f"partner_user:{editors[n // DASHBOARD_EMAILS_PER_DAY]}",
                    "emails_set_by": f"partner_user:{editors[n // DASHBOARD_EMAILS_PER_DAY]}",
                    "created_at": now,
                    "updated_at": now,
                    "next_run_at": far,
                }
                for n in range(schedules)
            ],
        )
    database.dispose()


def received(log_path: Path) -> list[tuple[str, float]]:
    if not log_path.exists():
        return []
    lines = [line.split() for line in log_path.read_text().splitlines() if line.strip()]
    # Only the reports' recipients: the partner's admin also gets e-mails (a client's status change).
    return [
        (p[0], float(p[1]))
        for p in lines
        if len(p) == 2 and p[0].startswith("r") and p[0].endswith("@bench.test")
    ]


def run(
    url: str,
    workers: int,
    schedules: int,
    smtp_port: int,
    smtp_pid: int | None,
    log_path: Path,
    concurrency: int,
    batch: int,
) -> dict[str, Any]:
    database = Database(Settings(database_url=url).sqlalchemy_url)
    with database.engine.begin() as conn:  # a clean slate: nothing due, no runs, no mails
        conn.execute(delete(ReportRun))
        conn.execute(delete(OutboxMail))
        conn.execute(
            update(ReportSchedule).values(
                next_run_at=datetime.now(UTC) + timedelta(days=365), lease_owner=None, lease_expires_at=None
            )
        )
    log_path.write_text("")
    env = {
        **os.environ,
        "TENANTRY_DATABASE_URL": url,
        "TENANTRY_SMTP_HOST": "127.0.0.1",
        "TENANTRY_SMTP_PORT": str(smtp_port),
        "TENANTRY_MAIL_FROM": "reports@bench.test",
        "TENANTRY_WORKER_CONCURRENCY": str(concurrency),
        "TENANTRY_LOG_LEVEL": "WARNING",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "worker", "--batch", str(batch), "--poll-seconds", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    time.sleep(6)  # let every worker import and connect before the slot
    # The slot: the next whole minute (at least 3 s away), every schedule's time of day.
    soon = datetime.now(UTC) + timedelta(seconds=3)
    slot = (soon + timedelta(minutes=1)).replace(second=0, microsecond=0)
    with database.engine.begin() as conn:
        conn.execute(update(ReportSchedule).values(time=slot.strftime("%H:%M"), next_run_at=slot))
    # Every schedule was moved to this slot a moment ago, which no statistics know yet (in use, a
    # run sets its next slot a day or more ahead, and autovacuum's ANALYZE sees it long before it
    # falls due). Without this, PostgreSQL expects no schedule to be due and plans the claim as a
    # read of every due schedule (1.2 ms a claim at 3,000 due, against 0.15 ms from the index).
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE report_schedules"))
    time.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))
    cpu_at_slot = cpu_times()
    processes_at_slot, started = process_times(), time.monotonic()
    deadline = time.monotonic() + 1800
    got: list[tuple[str, float]] = []
    while time.monotonic() < deadline:
        got = received(log_path)
        if len({r for r, _ in got}) >= schedules:
            break
        time.sleep(0.5)
    busy = cores_busy(cpu_at_slot, cpu_times())
    worker_pids = {process.pid for process in processes}

    def role(pid: int, name: str) -> str:
        if pid in worker_pids:
            return "workers"
        if pid == smtp_pid:
            return "smtp server"
        if name.startswith("postgres"):
            return "postgres"
        return "bench" if pid == os.getpid() else "other"

    roles = cores_by_role(processes_at_slot, process_times(), time.monotonic() - started, role)
    time.sleep(2)  # anything sent twice would arrive now
    got = received(log_path)
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
    with database.engine.connect() as conn:  # when the last slot's run (render, outbox) was written
        last_run = conn.scalar(select(func.max(ReportRun.finished_at)))
    database.dispose()
    counts = Counter(r for r, _ in got)
    last = max((at for _, at in got), default=slot.timestamp())
    lag = last - slot.timestamp()
    return {
        "workers": workers,
        "sent": len(counts),
        "twice": sum(1 for n in counts.values() if n > 1),
        "rate": len(counts) / lag if lag > 0 else 0.0,
        "lag": lag,
        "runs_lag": (last_run - slot).total_seconds() if last_run else 0.0,
        "busy": busy,
        "roles": roles,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_SCHEDULES} schedules")
    parser.add_argument("--schedules", type=int, help=f"schedules (default {DEFAULT_SCHEDULES})")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs at once in each worker (default 8)")
    parser.add_argument(
        "--batch", type=int, default=10, help="jobs of each kind claimed at a time (default 10)"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "TENANTRY_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    schedules = args.schedules or (QUICK_SCHEDULES if args.quick else DEFAULT_SCHEDULES)

    server_url = make_url(Settings(database_url=args.database_url).sqlalchemy_url)
    name = f"tenantry_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server_url.set(database=name).render_as_string(hide_password=False)
    smtp_port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="tenantry-bench-smtp-")) / "received.txt"
    # Spawned: this process has run the app (and polars), and a forked child of it can deadlock.
    smtp = multiprocessing.get_context("spawn").Process(
        target=serve_smtp, args=(smtp_port, str(log_path)), daemon=True
    )
    smtp.start()
    results = []
    try:
        upgrade(url)
        build(url, schedules)
        print(
            f"{schedules} daily schedules over {DASHBOARDS} small dashboards, all due in one minute; "
            f"workers with --batch {args.batch}, concurrency {args.concurrency}"
        )
        for workers in (1, 4):
            result = run(url, workers, schedules, smtp_port, smtp.pid, log_path, args.concurrency, args.batch)
            results.append(result)
            print(
                f"{workers} worker(s): {result['sent']} reports at {result['rate']:.1f}/s, "
                f"slot to last e-mail {result['lag']:.1f}s (to the last run written "
                f"{result['runs_lag']:.1f}s), sent twice {result['twice']}, "
                f"machine busy {_cores(result['busy'])} of {os.cpu_count()} cores"
                + (f" ({_roles(result['roles'])})" if result["roles"] else "")
                + (
                    f", {sum(result['roles'].values()) / result['rate'] * 1000:.1f} ms of CPU a report"
                    if result["roles"] and result["rate"]
                    else ""
                )
            )
    finally:
        smtp.terminate()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    one, four = results
    # With N cores, 4 workers can at best send N / (cores busy with 1 worker) times as many: the
    # ceiling this machine puts on the ratio, whatever the software does.
    ceiling = (
        f", ceiling on this machine {(os.cpu_count() or 1) / one['busy']:.2f} "
        f"({os.cpu_count()} cores / {one['busy']:.2f} busy with 1 worker)"
        if one["busy"]
        else ""
    )
    note = (
        ""
        if schedules >= 10_000
        else f"; {schedules} schedules, not 10,000: run --schedules 10000 for the full size"
    )
    print(
        f"reports: 1 worker {one['rate']:.1f}/s (slot to last e-mail {one['lag']:.1f}s), "
        f"4 workers {four['rate']:.1f}/s (slot to last e-mail {four['lag']:.1f}s), "
        f"ratio 4w/1w {four['rate'] / one['rate']:.2f} (goal >= 1.7), "
        f"slots sent twice {one['twice'] + four['twice']} (must be 0){ceiling}{note}"
    )


def _roles(roles: dict[str, float]) -> str:
    order = ["workers", "postgres", "smtp server", "bench", "other"]
    return ", ".join(f"{name} {roles[name]:.2f}" for name in order if name in roles)


def _cores(busy: float | None) -> str:
    return "?" if busy is None else f"{busy:.2f}"


if __name__ == "__main__":
    main()

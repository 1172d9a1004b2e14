"""Shared by the benchmarks: throw-away databases and bulk-made clients."""

from __future__ import annotations

import os
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


def cpu_times() -> tuple[int, int] | None:
    """(busy, all) jiffies of the whole machine, from /proc/stat (None where there is none)."""
    try:
        fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


def cores_busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """How many of the machine's cores were busy on average between the two readings (every
    process: the servers or workers, PostgreSQL, Redis, the load generator, anything else)."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def process_times() -> dict[int, tuple[str, int, int]]:
    """Every process's name, parent and CPU time so far (user + system, in clock ticks), from
    /proc (empty where there is none)."""
    times: dict[int, tuple[str, int, int]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/stat").exists() else ():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # gone since the listing
            continue
        # `pid (name) state ppid ...`: the name may hold spaces and parentheses, so split after it.
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        times[int(entry.name)] = (name, int(fields[1]), int(fields[11]) + int(fields[12]))
    return times  # fields: state, ppid, ..., utime (11), stime (12)


def descendants(times: dict[int, tuple[str, int, int]], roots: set[int]) -> set[int]:
    """The processes of `roots` and every process under them, from a reading of `process_times()`."""
    found = {pid for pid in roots if pid in times}
    grew = True
    while grew:
        below = {pid for pid, (_, parent, _) in times.items() if parent in found} - found
        found |= below
        grew = bool(below)
    return found


def cores_by_role(
    before: dict[int, tuple[str, int, int]],
    after: dict[int, tuple[str, int, int]],
    seconds: float,
    role: Callable[[int, str], str],
) -> dict[str, float]:
    """How many cores each role kept busy on average over `seconds` between two readings of
    `process_times()`; `role(pid, name)` names each process's role. A process started between
    the readings counts from its start; one that ended between them is not counted."""
    if seconds <= 0:
        return {}
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for pid, (name, _, total) in after.items():
        earlier = before.get(pid)
        spent = total - (earlier[2] if earlier and earlier[0] == name else 0)
        if spent > 0:
            key = role(pid, name)
            used[key] = used.get(key, 0.0) + spent / ticks / seconds
    return used

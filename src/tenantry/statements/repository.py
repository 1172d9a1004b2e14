"""All SQL for statements: the terms history and, for a month, every client's histories at once,
or (PostgreSQL) the month's lines counted by the database.

A statement reads a fixed number of queries however many clients the partner has. On SQLite: the
terms, the status changes, the allocation changes (each: the rows inside the month plus every
client's last row before it, picked with a window function), the clients' names, the deleted
clients', and the earlier names of those renamed since the month ended; `compute` counts the days.
On PostgreSQL: the terms, and one query that counts the days and returns the lines, named
(`month_lines`).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from tenantry.db.models import AllocationChange, Client, Partner, StatusChange
from tenantry.db.statements_models import ClientRename, DeletedClient, TermsChange
from tenantry.statements.compute import ClientHistory, Terms, swallowed_days


def record_terms(db: Session, partner: Partner, at: datetime, actor: str) -> None:
    """Append a snapshot of the partner's terms as they are now."""
    db.add(
        TermsChange(
            partner_id=partner.id,
            at=at,
            timezone=partner.timezone,
            currency=partner.currency,
            dashboard_price=partner.dashboard_price,
            user_price=partner.user_price,
            actor=actor,
        )
    )


def terms_history(db: Session, partner: Partner) -> list[Terms]:
    rows = db.execute(
        select(
            TermsChange.at,
            TermsChange.timezone,
            TermsChange.currency,
            TermsChange.dashboard_price,
            TermsChange.user_price,
        )
        .where(TermsChange.partner_id == partner.id)
        .order_by(TermsChange.id)
    ).all()
    history = [Terms(at, tz, cur, {"dashboards": dp, "users": up}) for at, tz, cur, dp, up in rows]
    if not history:
        # A partner without a snapshot has had its present terms all along.
        history.append(
            Terms(
                partner.created_at,
                partner.timezone,
                partner.currency,
                {"dashboards": partner.dashboard_price, "users": partner.user_price},
            )
        )
    return history


def _window(table: Any, values: list[Any], partner_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Rows of `table` inside [start, end), plus each client's last row before `start`, in order."""
    columns = [table.client_id, table.at, *values, table.id]
    inside = select(*columns).where(table.partner_id == partner_id, table.at >= start, table.at < end)
    rank = (
        func.row_number()
        .over(partition_by=table.client_id, order_by=(table.at.desc(), table.id.desc()))
        .label("rank")
    )
    ranked = select(*columns, rank).where(table.partner_id == partner_id, table.at < start).subquery()
    before = select(*(ranked.c[c.key] for c in columns)).where(ranked.c.rank == literal(1))
    both = union_all(inside, before).subquery()
    return select(both).order_by(both.c.client_id, both.c.at, both.c.id)


def _histories(
    db: Session,
    table: Any,
    values: list[Any],
    value: Callable[[Any], Any],
    partner_id: int,
    start: datetime,
    end: datetime,
) -> dict[int, list[tuple[datetime, Any]]]:
    grouped: dict[int, list[tuple[datetime, Any]]] = defaultdict(list)
    # Core rows straight from the connection: no ORM bookkeeping for a large read.
    for row in db.connection().execute(_window(table, values, partner_id, start, end)):
        grouped[row[0]].append((row[1], value(row)))
    return grouped


def month_histories(db: Session, partner_id: int, start: datetime, end: datetime) -> list[ClientHistory]:
    """Every client's status and allocation history relevant to [start, end), in three queries."""
    statuses = _histories(
        db, StatusChange, [StatusChange.to_status], lambda row: row[2], partner_id, start, end
    )
    allocations = _histories(
        db,
        AllocationChange,
        [AllocationChange.dashboards, AllocationChange.users],
        lambda row: {"dashboards": row[2], "users": row[3]},
        partner_id,
        start,
        end,
    )
    clients = db.execute(select(Client.id, Client.name).where(Client.partner_id == partner_id))
    # A deleted client's histories are kept: it counts up to its deletion, under the name it had.
    # One deleted before the month began has nothing in it.
    deleted = db.execute(
        select(DeletedClient.id, DeletedClient.name, DeletedClient.deleted_at).where(
            DeletedClient.partner_id == partner_id, DeletedClient.deleted_at > start
        )
    )
    known: dict[int, tuple[str, datetime | None]] = {client_id: (name, None) for client_id, name in clients}
    known.update((client_id, (name, at)) for client_id, name, at in deleted)
    # A client renamed since the month ended is named as it was then: its first rename's old name.
    renamed = db.execute(
        select(ClientRename.client_id, ClientRename.old_name)
        .where(ClientRename.partner_id == partner_id, ClientRename.at >= end)
        .order_by(ClientRename.client_id, ClientRename.at.desc(), ClientRename.id.desc())
    )
    for client_id, old_name in renamed:  # the first rename after the month comes last
        if client_id in known:
            known[client_id] = (old_name, known[client_id][1])
    return [
        ClientHistory(
            client_id,
            known[client_id][0],
            history,
            allocations.get(client_id, []),
            deleted_at=known[client_id][1],
        )
        for client_id, history in statuses.items()
        if client_id in known
    ]


def partner_choices(db: Session) -> list[tuple[int, str]]:
    return [(pid, name) for pid, name in db.execute(select(Partner.id, Partner.name).order_by(Partner.id))]


# PostgreSQL computes a month's billable days itself (SPEC §7, as `compute.py` does in Python):
# each client's status and allocation histories become spans (a row lasts until the next row of its
# kind; rows at the same instant leave only the last one a non-empty span), the billable status spans
# meet the allocation spans in pieces clipped to the month (and to a deletion), each piece touches a
# run of days (`width_bucket` over the day bounds: from the day holding its start to the day holding
# its last moment). Pieces never overlap, so only a piece's first and last days can be touched by
# another piece too: those shared days take the highest quantity of the pieces touching them, a
# piece's other days are its own and are counted per run of days with the same prices. Days are then
# counted per client, resource, quantity and price. The rows read are the month's own plus, per
# client, the last one of each kind before it (an index-only probe each, on the (client_id, at, id)
# indexes). The days a timezone change swallowed at the month's start (`Frame.swallowed`: no piece
# touches them) are counted with the first day left, the one row of each line that begins on it.
_DAYS_SQL = """
WITH gone AS (
    SELECT id, name, deleted_at FROM deleted_clients
    WHERE partner_id = %(partner_id)s AND deleted_at > %(start)s{half_of_id}
),
known AS (
    -- The clients in the month: the partner's, and those deleted since it began (their last name).
    SELECT id, name FROM gone
    UNION ALL
    SELECT id, name FROM clients
    WHERE partner_id = %(partner_id)s{half_of_id} AND NOT EXISTS (SELECT FROM gone WHERE gone.id = clients.id)
),
named AS (
    -- Each as it was named when the month ended: a client renamed since, by its first rename's old name.
    SELECT known.id, coalesce(renamed.old_name, known.name) AS name
    FROM known LEFT JOIN (
        SELECT DISTINCT ON (client_id) client_id, old_name FROM client_renames
        WHERE partner_id = %(partner_id)s AND at >= %(end)s
        ORDER BY client_id, at, id
    ) AS renamed ON renamed.client_id = known.id
),
statuses AS (
    SELECT client_id, at, id, to_status FROM status_changes
    WHERE partner_id = %(partner_id)s AND at >= %(start)s AND at < %(end)s{half_of_client_id}
    UNION ALL
    SELECT known.id, last.at, last.id, last.to_status
    FROM known CROSS JOIN LATERAL (
        SELECT at, id, to_status FROM status_changes
        WHERE client_id = known.id AND partner_id = %(partner_id)s AND at < %(start)s
        ORDER BY at DESC, id DESC LIMIT 1
    ) AS last
),
allocations AS (
    SELECT client_id, at, id, dashboards, users FROM allocation_changes
    WHERE partner_id = %(partner_id)s AND at >= %(start)s AND at < %(end)s{half_of_client_id}
    UNION ALL
    SELECT known.id, last.at, last.id, last.dashboards, last.users
    FROM known CROSS JOIN LATERAL (
        SELECT at, id, dashboards, users FROM allocation_changes
        WHERE client_id = known.id AND partner_id = %(partner_id)s AND at < %(start)s
        ORDER BY at DESC, id DESC LIMIT 1
    ) AS last
),
billable_spans AS (
    SELECT client_id, lo, hi FROM (
        SELECT client_id, to_status, at AS lo,
               lead(at) OVER (PARTITION BY client_id ORDER BY at, id) AS hi
        FROM statuses
    ) AS spans
    WHERE to_status = ANY(%(billable)s::text[])
),
allocation_spans AS (
    SELECT client_id, dashboards, users, at AS lo,
           lead(at) OVER (PARTITION BY client_id ORDER BY at, id) AS hi
    FROM allocations
),
pieces AS (
    SELECT s.client_id, a.dashboards, a.users,
           greatest(s.lo, a.lo, %(start)s) AS lo,
           least(s.hi, a.hi, gone.deleted_at, %(end)s) AS hi,
           least(s.hi, a.hi, gone.deleted_at, %(until)s) AS hi_to_date
    FROM billable_spans AS s
    JOIN allocation_spans AS a
        ON a.client_id = s.client_id AND (s.hi IS NULL OR a.lo < s.hi) AND (a.hi IS NULL OR s.lo < a.hi)
    LEFT JOIN gone ON gone.id = s.client_id
),
clipped AS (
    SELECT client_id, true AS projected, dashboards, users, lo, hi FROM pieces WHERE lo < hi
    {to_date}
),
bounded AS (
    SELECT client_id, projected, dashboards, users,
           width_bucket(lo, %(bounds)s::timestamptz[]) - 1 AS first_day,
           width_bucket(hi - interval '1 microsecond', %(bounds)s::timestamptz[]) - 1 AS last_day
    FROM clipped
),
neighbours AS (
    SELECT client_id, projected, dashboards, users, first_day, last_day,
           coalesce(lag(last_day) OVER client = first_day, false) AS shares_first,
           coalesce(lead(first_day) OVER client = last_day, false) AS shares_last
    FROM bounded
    WINDOW client AS (PARTITION BY client_id, projected ORDER BY first_day, last_day)
),
owned AS (
    SELECT client_id, projected, dashboards, users,
           first_day + shares_first::int AS first_day, last_day - shares_last::int AS last_day
    FROM neighbours
),
prices AS (
    SELECT * FROM unnest(
        %(run_first)s::int[], %(run_last)s::int[], %(run_dashboard_price)s::int[], %(run_user_price)s::int[]
    ) AS run(first_day, last_day, dashboard_price, user_price)
),
shared AS (
    SELECT client_id, projected, day, max(dashboards) AS dashboards, max(users) AS users
    FROM (
        SELECT client_id, projected, first_day AS day, dashboards, users FROM neighbours
        WHERE shares_first OR (shares_last AND first_day = last_day)
        UNION ALL
        SELECT client_id, projected, last_day, dashboards, users FROM neighbours
        WHERE shares_last AND first_day < last_day
    ) AS edges
    GROUP BY client_id, projected, day
),
days AS (
    SELECT o.client_id, o.projected, o.dashboards, o.users, p.dashboard_price, p.user_price,
           least(o.last_day, p.last_day) - greatest(o.first_day, p.first_day) + 1 AS days,
           greatest(o.first_day, p.first_day) AS first_day
    FROM owned AS o
    JOIN prices AS p ON p.first_day <= o.last_day AND o.first_day <= p.last_day
    WHERE o.first_day <= o.last_day
    UNION ALL
    SELECT client_id, projected, dashboards, users,
           (%(dashboard_prices)s::int[])[day + 1], (%(user_prices)s::int[])[day + 1], 1, day
    FROM shared
),
counted AS (
    SELECT client_id, projected,
           GROUPING(dashboards, users) - 1 AS resource,
           coalesce(dashboards, users) AS quantity,
           coalesce(dashboard_price, user_price) AS price,
           sum(days + CASE WHEN first_day = %(swallowed)s THEN %(swallowed)s ELSE 0 END) AS days,
           min(CASE WHEN first_day = %(swallowed)s THEN 0 ELSE first_day END) AS first_day
    FROM days
    GROUP BY GROUPING SETS (
        (client_id, projected, dashboards, dashboard_price), (client_id, projected, users, user_price)
    )
)
{lines}
"""
# Moments before `until` count too, apart, while the month is in progress.
_TO_DATE = (
    "UNION ALL SELECT client_id, false, dashboards, users, lo, hi_to_date FROM pieces WHERE lo < hi_to_date"
)
# A row per line of a month that has ended: its days to date are its projected days.
_ENDED_LINES = """
SELECT client_id, named.name, resource, quantity, price, days::int, days::int, first_day
FROM counted JOIN named ON named.id = counted.client_id
WHERE quantity <> 0
ORDER BY client_id, resource, first_day
"""
# A month in progress: a line's days to date and projected days, counted apart, meet in one row. A
# line holds the first day of its projected days, or of its days to date when it has no projected
# ones (a quantity held only before `now` on `now`'s day): it comes after one beginning that day.
_RUNNING_LINES = """
SELECT client_id, named.name, resource, quantity, price,
       coalesce(sum(days) FILTER (WHERE NOT projected), 0)::int AS days,
       coalesce(sum(days) FILTER (WHERE projected), 0)::int AS projected_days,
       coalesce(min(first_day) FILTER (WHERE projected), min(first_day)) AS first_day
FROM counted JOIN named ON named.id = counted.client_id
WHERE quantity <> 0
GROUP BY client_id, named.name, resource, quantity, price
ORDER BY client_id, resource, first_day, bool_or(projected) DESC
"""


def month_lines(
    db: Session,
    partner_id: int,
    bounds: Sequence[datetime],
    until: datetime,
    billable: Iterable[str],
    dashboard_prices: Sequence[int],
    user_prices: Sequence[int],
) -> list[tuple[int, str, int, int, int, int, int, int]]:
    """PostgreSQL: the month's lines, client by client, in the order `compute.client_lines` gives them,
    as (client id, client name, resource (index in PRICED_RESOURCES), quantity, price, billable days
    to date, projected billable days, first day).

    `bounds` lays the month out in days. Prices are given per day and resource as small integers (one
    per distinct price of the resource). Days to date count the moments before `until`. The clients
    are the partner's and those deleted after the month began (counted up to their deletion).
    """
    ended = until >= bounds[-1]
    lines = _ENDED_LINES if ended else _RUNNING_LINES
    to_date = "" if ended else _TO_DATE
    whole = _DAYS_SQL.format(to_date=to_date, lines=lines, half_of_id="", half_of_client_id="")
    # Runs of days with the same prices (one, unless the prices changed during the month).
    runs: list[list[int]] = []
    for day, prices in enumerate(zip(dashboard_prices, user_prices, strict=True)):
        if runs and (runs[-1][2], runs[-1][3]) == prices:
            runs[-1][1] = day
        else:
            runs.append([day, day, *prices])
    params = {
        "partner_id": partner_id,
        "start": bounds[0],
        "end": bounds[-1],
        "until": min(until, bounds[-1]),
        "swallowed": swallowed_days(bounds),
        "bounds": list(bounds),
        "billable": sorted(billable),
        "dashboard_prices": list(dashboard_prices),
        "user_prices": list(user_prices),
        "run_first": [run[0] for run in runs],
        "run_last": [run[1] for run in runs],
        "run_dashboard_price": [run[2] for run in runs],
        "run_user_price": [run[3] for run in runs],
    }
    connection = db.connection().connection.driver_connection
    assert isinstance(connection, psycopg.Connection)
    # One statement of a process at a time counts in halves; the others count in one query.
    if _count_clients(db, partner_id) >= SPLIT_FROM_CLIENTS and _SPLITTING.acquire(blocking=False):
        try:
            halves = _DAYS_SQL.format(
                to_date=to_date,
                lines=lines,
                half_of_id=" AND id %% 2 = %(half)s",
                half_of_client_id=" AND client_id %% 2 = %(half)s",
            )
            return _lines_in_halves(db, connection, halves, params)
        finally:
            _SPLITTING.release()
    return _lines(connection, whole, params)


# A partner with this many clients has its lines counted in two halves at once (odd and even client
# ids), each on a connection of its own, on one snapshot: PostgreSQL counts each half on a core of its
# own, and the request waits for the longer half (10,000 clients: 0.19-0.23 s instead of 0.32-0.36 s
# on a 2-core machine). Below it, opening two connections costs more than it saves. One statement of
# a process at a time does so (the others count in one query), so a process opens at most two
# connections beyond its pool for it.
SPLIT_FROM_CLIENTS = 2_000
_SPLITTING = threading.BoundedSemaphore(1)
# Seconds to wait for each half's connection to open.
_CONNECT_TIMEOUT = 10
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(?:-[0-9A-F]+)+")


def _count_clients(db: Session, partner_id: int) -> int:
    return int(
        db.scalar(select(func.count()).select_from(Client).where(Client.partner_id == partner_id)) or 0
    )


def _lines(connection: psycopg.Connection[Any], sql: str, params: dict[str, Any]) -> list[Any]:
    # Binary rows: the lines are many, and integers arrive without parsing text.
    with connection.cursor(binary=True) as cursor:
        # A report over many rows: planned without JIT (its compile time would outweigh the gain) and
        # with the memory to hash and sort in one pass, for this transaction only.
        cursor.execute("SELECT set_config('jit', 'off', true), set_config('work_mem', '32MB', true)")
        cursor.execute(sql, params)
        return cursor.fetchall()


def _lines_in_halves(
    db: Session, exporting: psycopg.Connection[Any], sql: str, params: dict[str, Any]
) -> list[Any]:
    """The lines of both halves (`SPLIT_FROM_CLIENTS`), client by client as one query gives them.

    Both halves read the snapshot the session's transaction exports (`pg_export_snapshot`), each on
    a connection of its own, opened for it rather than taken from the pool (a busy pool could
    otherwise leave every request holding one connection and waiting for another). They see what
    was committed when it was exported, not what the session itself has written and not yet
    committed: a statement is read, never computed inside a transaction that changes histories."""
    exported = exporting.execute("SELECT pg_export_snapshot()").fetchone()
    assert exported is not None
    snapshot = str(exported[0])
    # SET TRANSACTION SNAPSHOT takes no parameter: the id, e.g. 00000003-0000001B-1, is checked.
    assert _SNAPSHOT_ID.fullmatch(snapshot), snapshot
    conninfo = db.get_bind().engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def half(number: int) -> list[Any]:
        with psycopg.connect(conninfo, connect_timeout=_CONNECT_TIMEOUT) as connection:
            connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            connection.read_only = True
            connection.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            return _lines(connection, sql, {**params, "half": number})

    with ThreadPoolExecutor(max_workers=1) as other:
        odd = other.submit(half, 1)
        even = half(0)
        lines = even + odd.result()
    # Each half comes in the query's order, and no client is in both: ordered by client, stably.
    lines.sort(key=lambda line: line[0])
    return lines

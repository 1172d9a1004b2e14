"""All SQL for statements: the terms history and, for a month, every client's histories at once.

A statement reads a fixed number of queries however many clients the partner has: the terms, the
status changes, the allocation changes (each: the rows inside the month plus every client's last
row before it, picked with a window function), the clients' names and the deleted clients'.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from tenantry.db.models import AllocationChange, Client, Partner, StatusChange
from tenantry.db.statements_models import DeletedClient, TermsChange
from tenantry.statements.compute import ClientHistory, Terms


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

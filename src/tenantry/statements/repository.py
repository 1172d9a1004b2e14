"""All SQL for statements: the terms history and, for a month, every client's histories at once.

A statement reads a fixed number of queries however many clients the partner has: the clients,
their status changes, their allocation changes (each: the rows inside the month plus the last row
before it, picked with a window function) and the terms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from tenantry.db.models import AllocationChange, Client, Partner, StatusChange
from tenantry.db.statements_models import TermsChange
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
        .order_by(TermsChange.at, TermsChange.id)
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


def _window(table: Any, columns: list[Any], partner_id: int, start: datetime, end: datetime) -> Select[Any]:
    """Rows of `table` inside [start, end), plus each client's last row before `start`."""
    inside = select(*columns, table.id).where(
        table.partner_id == partner_id, table.at >= start, table.at < end
    )
    rank = (
        func.row_number()
        .over(partition_by=table.client_id, order_by=(table.at.desc(), table.id.desc()))
        .label("rank")
    )
    ranked = (
        select(*columns, table.id.label("id"), rank)
        .where(table.partner_id == partner_id, table.at < start)
        .subquery()
    )
    before = select(*(ranked.c[c.key] for c in columns), ranked.c.id).where(ranked.c.rank == literal(1))
    return union_all(inside, before).subquery().select()


def _histories(
    db: Session, table: Any, values: list[Any], partner_id: int, start: datetime, end: datetime
) -> dict[int, list[Any]]:
    columns = [table.client_id, table.at, *values]
    query = _window(table, columns, partner_id, start, end)
    rows = list(db.execute(query).all())
    # Order in Python: the union's order is not guaranteed, and the window already did the work.
    rows.sort(key=lambda row: (row[0], row[1], row[-1]))
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row[0]].append(row)
    return grouped


def month_histories(db: Session, partner_id: int, start: datetime, end: datetime) -> list[ClientHistory]:
    """Every client's status and allocation history relevant to [start, end), in four queries."""
    statuses = _histories(db, StatusChange, [StatusChange.to_status], partner_id, start, end)
    allocations = _histories(
        db, AllocationChange, [AllocationChange.dashboards, AllocationChange.users], partner_id, start, end
    )
    clients = db.execute(select(Client.id, Client.name).where(Client.partner_id == partner_id))
    names: Mapping[int, str] = {client_id: name for client_id, name in clients}
    return [
        ClientHistory(
            client_id=client_id,
            client_name=names.get(client_id, ""),
            statuses=[(row[1], row[2]) for row in rows],
            allocations=[
                (row[1], {"dashboards": row[2], "users": row[3]}) for row in allocations.get(client_id, [])
            ],
        )
        for client_id, rows in statuses.items()
    ]


def partner_choices(db: Session) -> list[tuple[int, str]]:
    return [(pid, name) for pid, name in db.execute(select(Partner.id, Partner.name).order_by(Partner.id))]

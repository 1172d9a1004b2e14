"""Leases on job rows (data sources, event deliveries, outbox e-mails): the SQL every kind of job
shares.

A job row carries `lease_owner` and `lease_expires_at`. A worker that claims it sets both; one
that dies simply lets the lease run out, and the row is free again.

Claims are fair across partners: `fair_pick` takes each partner's longest-waiting job first,
then each partner's second, and so on, and never more than a partner's share of the worker's
slots, so one partner's backlog of slow jobs cannot take every slot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session


@dataclass(frozen=True)
class Shares:
    """How many more jobs each partner may start: `default` for a partner with none running,
    `left[partner_id]` for one that already runs some (0: none more)."""

    default: int
    left: Mapping[int, int] = field(default_factory=dict)


def lease_free(expires_at: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    """No worker holds the job, or the one that did let its lease run out."""
    return or_(expires_at.is_(None), expires_at <= now)


def fair_pick(
    db: Session,
    id_column: Any,
    partner_column: Any,
    order: Any,
    where: ColumnElement[bool],
    limit: int,
    shares: Shares,
) -> list[int]:
    """The ids of up to `limit` jobs matching `where`, taken in turns across partners (ordered by
    `order` within each partner), none beyond a partner's share.

    Nothing is locked here: the caller locks the picked rows with `FOR UPDATE SKIP LOCKED` and
    `where` again (PostgreSQL rechecks it on the row it locks), so a job another worker took in
    between is simply skipped. (PostgreSQL allows no `FOR UPDATE` beside a window function.)
    """
    if limit <= 0:
        return []
    full = [partner for partner, left in shares.left.items() if left <= 0]
    partly = {partner: left for partner, left in shares.left.items() if left > 0}
    turn = func.row_number().over(partition_by=partner_column, order_by=(order, id_column))
    candidates = select(
        id_column.label("id"), partner_column.label("partner_id"), order.label("due"), turn.label("turn")
    ).where(where)
    if full:
        candidates = candidates.where(partner_column.not_in(full))
    inner = candidates.subquery()
    share: Any = (
        case(partly, value=inner.c.partner_id, else_=shares.default) if partly else literal(shares.default)
    )
    query = (
        select(inner.c.id)
        .where(inner.c.turn <= share)
        .order_by(inner.c.turn, inner.c.due, inner.c.id)
        .limit(limit)
    )
    return list(db.scalars(query))


def release(db: Session, model: Any, ids: Sequence[int], worker_id: str) -> None:
    """Give back jobs this worker claimed but will not run (it is stopping, or too little of the
    lease is left)."""
    if ids:
        db.execute(
            update(model)
            .where(model.id.in_(ids), model.lease_owner == worker_id)
            .values(lease_owner=None, lease_expires_at=None)
        )

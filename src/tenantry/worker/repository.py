"""All SQL for claiming data-source refreshes.

Which sources may refresh is decided by the policy table, turned into SQL here: a source whose
client is disabled or whose trial has expired is simply not selected, so no job is ever claimed
for it, and nothing has to be "stopped" when the status changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, case, false, func, or_, select, type_coerce, update
from sqlalchemy.orm import Session, defer

from tenantry.clients.repository import in_effective_status
from tenantry.db import leases
from tenantry.db.base import UTCDateTime
from tenantry.db.dashboard_models import DataSource
from tenantry.db.leases import lease_free
from tenantry.db.models import Client
from tenantry.owners import content_status
from tenantry.policy import Capability, EffectiveStatus, allows


def owner_allows(capability: Capability, now: datetime) -> ColumnElement[bool]:
    """SQL for "the policy table allows `capability` to this source's owner at `now`"."""
    statuses = [in_effective_status(s, now) for s in EffectiveStatus if allows(capability, s)]
    clients = DataSource.client_id.in_(select(Client.id).where(or_(*statuses))) if statuses else false()
    if allows(capability, content_status(None, None, now)):  # the partner's own sources
        return or_(DataSource.client_id.is_(None), clients)
    return clients


def queued(now: datetime) -> ColumnElement[bool]:
    return and_(DataSource.refresh_requested_at.is_not(None), owner_allows(Capability.QUEUE_REFRESH, now))


def scheduled(now: datetime) -> ColumnElement[bool]:
    return and_(
        DataSource.refresh_interval.is_not(None),
        DataSource.next_refresh_at <= now,
        owner_allows(Capability.AUTO_REFRESH, now),
    )


def due(now: datetime) -> ColumnElement[bool]:
    return and_(DataSource.kind.in_(("url", "sql")), or_(queued(now), scheduled(now)))


@dataclass(frozen=True)
class RefreshJob:
    source_id: int
    partner_id: int
    url: str | None  # None for a sql source
    format: str | None
    queued: bool  # a manual refresh (QUEUE_REFRESH) rather than a scheduled one (AUTO_REFRESH)
    due_at: datetime  # when it became due, or eligible, whichever is later
    claimed_at: datetime


def claim(
    db: Session,
    worker_id: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    shares: leases.Shares | None = None,
) -> list[RefreshJob]:
    """Lease up to `limit` due sources, the longest-waiting first, in turns across partners and
    within each partner's share. Other workers skip the rows locked here, and skip them later
    while the lease holds."""
    waiting = and_(due(now), lease_free(DataSource.lease_expires_at, now))
    order = func.coalesce(DataSource.refresh_requested_at, DataSource.next_refresh_at)
    is_queued = queued(now)
    # CASE and MIN lose the column type: coerce so the values come back as UTC datetimes.
    due_at = type_coerce(
        case((is_queued, DataSource.refresh_requested_at), else_=DataSource.next_refresh_at), UTCDateTime()
    )
    columns = select(
        DataSource.id,
        DataSource.partner_id,
        DataSource.url,
        DataSource.format,
        case((is_queued, True), else_=False).label("queued"),
        due_at.label("due_at"),
        type_coerce(
            select(Client.status_changed_at).where(Client.id == DataSource.client_id).scalar_subquery(),
            UTCDateTime(),
        ).label("eligible_since"),
    )

    def lock(extra: ColumnElement[bool], n: int | None) -> Sequence[Row[Any]]:
        query = columns.where(waiting, extra).order_by(order, DataSource.id).limit(n)
        return db.execute(query.with_for_update(skip_locked=True, of=DataSource)).all()

    rows = leases.claim_in_turn(
        db,
        DataSource.id,
        DataSource.partner_id,
        order,
        waiting,
        limit,
        shares or leases.Shares(limit),
        lock,
        lambda r: (r.id, r.partner_id),
    )
    if not rows:
        return []
    db.execute(
        update(DataSource)
        .where(DataSource.id.in_([r.id for r in rows]))
        .values(lease_owner=worker_id, lease_expires_at=lease_until)
    )
    # A source overdue because its client was disabled or in Setup has only been waiting since
    # the client's last status change: that is what its lag counts from.
    return [
        RefreshJob(
            r.id,
            r.partner_id,
            r.url,
            r.format,
            bool(r.queued),
            max(r.due_at, r.eligible_since or r.due_at),
            now,
        )
        for r in rows
    ]


def leased(
    db: Session, source_id: int, worker_id: str, capability: Capability, now: datetime
) -> tuple[DataSource, bool] | None:
    """The source, locked, if this worker still holds its lease, and whether its owner's status
    still allows `capability` (it may have changed during the fetch). Its rows are not loaded."""
    row = db.execute(
        select(DataSource, owner_allows(capability, now).label("allowed"))
        .options(defer(DataSource.rows))
        .where(DataSource.id == source_id, DataSource.lease_owner == worker_id)
        .with_for_update(of=DataSource)
    ).one_or_none()
    return None if row is None else (row[0], bool(row[1]))


def release(db: Session, source_ids: Sequence[int], worker_id: str) -> None:
    leases.release(db, DataSource, source_ids, worker_id)


def queue_depth(db: Session, now: datetime) -> tuple[int, datetime | None]:
    """How many refreshes are due and not being run, and since when the oldest has waited."""
    waiting = and_(due(now), lease_free(DataSource.lease_expires_at, now))
    oldest = type_coerce(
        func.min(func.coalesce(DataSource.refresh_requested_at, DataSource.next_refresh_at)), UTCDateTime()
    )
    count, first = db.execute(select(func.count(), oldest).where(waiting)).one()
    return int(count or 0), first

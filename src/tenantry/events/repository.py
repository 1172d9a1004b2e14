"""All SQL of the outbox: trial notices due, undispatched events, deliveries and their leases.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL (rendered as nothing on SQLite, where the
worker's write transaction is IMMEDIATE and so already alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tenantry.db import leases
from tenantry.db.models import Client, Event, PartnerUser
from tenantry.db.worker_models import EventDelivery, TrialNotice, Webhook
from tenantry.lifecycle import TRIAL_WILL_END_NOTICE
from tenantry.policy import Status


def trials_due(db: Session, kind: str, now: datetime, limit: int) -> Sequence[Client]:
    """Clients in Trial whose `kind` notice for their current end is due and not yet written."""
    in_trial = [Client.status == Status.TRIAL.value, Client.trial_ends_at.is_not(None)]
    if kind == "will_end":
        # Not once the end has passed: then only `ended` is news.
        in_trial += [Client.trial_ends_at > now, Client.trial_ends_at <= now + TRIAL_WILL_END_NOTICE]
    else:
        in_trial.append(Client.trial_ends_at <= now)
    written = exists().where(
        TrialNotice.client_id == Client.id,
        TrialNotice.kind == kind,
        TrialNotice.trial_ends_at == Client.trial_ends_at,
    )
    query = select(Client).where(*in_trial, ~written).order_by(Client.trial_ends_at, Client.id).limit(limit)
    return db.scalars(query).all()


def record_notice(db: Session, client_id: int, kind: str, ends_at: datetime, now: datetime) -> bool:
    """Write the notice unless another worker already has: True when this call wrote it.

    A racing insert of the same key waits for the first transaction and then does nothing.
    """
    dialect = postgresql if db.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(TrialNotice)
        .values(client_id=client_id, kind=kind, trial_ends_at=ends_at, created_at=now)
        .on_conflict_do_nothing()
        .returning(TrialNotice.client_id)
    )
    return db.execute(statement).first() is not None


def claim_undispatched(db: Session, limit: int) -> Sequence[Event]:
    return db.scalars(
        select(Event)
        .where(Event.dispatched_at.is_(None))
        .order_by(Event.created_at, Event.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()


def mark_dispatched(db: Session, event_ids: Sequence[str], now: datetime) -> None:
    """Mark these events fanned out, in one statement however many there are."""
    if event_ids:
        db.execute(update(Event).where(Event.id.in_(event_ids)).values(dispatched_at=now))


def webhooks_of(db: Session, partner_id: int) -> Sequence[Webhook]:
    return db.scalars(select(Webhook).where(Webhook.partner_id == partner_id).order_by(Webhook.id)).all()


def admin_emails(db: Session, partner_id: int) -> list[str]:
    return list(
        db.scalars(
            select(PartnerUser.email)
            .where(PartnerUser.partner_id == partner_id, PartnerUser.role == "admin")
            .order_by(PartnerUser.id)
        )
    )


def due_deliveries(now: datetime) -> ColumnElement[bool]:
    return and_(
        EventDelivery.status == "pending",
        EventDelivery.next_attempt_at <= now,
        leases.lease_free(EventDelivery.lease_expires_at, now),
    )


def claim_deliveries(
    db: Session, worker_id: str, now: datetime, lease_until: datetime, limit: int, shares: leases.Shares
) -> Sequence[EventDelivery]:
    """Lease up to `limit` due deliveries, the longest-waiting first, fairly across partners."""
    waiting = due_deliveries(now)

    def lock(extra: ColumnElement[bool], n: int | None) -> Sequence[EventDelivery]:
        query = select(EventDelivery).where(waiting, extra)
        query = query.order_by(EventDelivery.next_attempt_at, EventDelivery.id).limit(n)
        return db.scalars(query.with_for_update(skip_locked=True)).all()

    deliveries = leases.claim_in_turn(
        db,
        EventDelivery.id,
        EventDelivery.partner_id,
        EventDelivery.next_attempt_at,
        waiting,
        limit,
        shares,
        lock,
        lambda d: (d.id, d.partner_id),
        partner_index=True,
    )
    for delivery in deliveries:
        delivery.lease_owner, delivery.lease_expires_at = worker_id, lease_until
    db.flush()
    return deliveries


def leased_delivery(db: Session, delivery_id: int, worker_id: str) -> EventDelivery | None:
    """The delivery, locked, if this worker still holds its lease (it may have expired and moved on)."""
    return db.scalars(
        select(EventDelivery)
        .where(EventDelivery.id == delivery_id, EventDelivery.lease_owner == worker_id)
        .with_for_update()
    ).one_or_none()


def release_deliveries(db: Session, ids: Sequence[int], worker_id: str) -> None:
    leases.release(db, EventDelivery, ids, worker_id)


def events_by_id(db: Session, ids: set[str]) -> dict[str, Event]:
    return {e.id: e for e in db.scalars(select(Event).where(Event.id.in_(ids)))} if ids else {}


def webhooks_by_id(db: Session, ids: set[int]) -> dict[int, Webhook]:
    return {w.id: w for w in db.scalars(select(Webhook).where(Webhook.id.in_(ids)))} if ids else {}


def pending_deliveries(db: Session, now: datetime) -> int:
    query = select(func.count()).select_from(EventDelivery).where(due_deliveries(now))
    return int(db.scalar(query) or 0)

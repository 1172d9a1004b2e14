"""All SQL of the e-mail outbox: queued messages and their leases, and who may be e-mailed.

Claims use `FOR UPDATE SKIP LOCKED` on PostgreSQL (rendered as nothing on SQLite, where the
worker's write transaction is IMMEDIATE and so already alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, func, select, update
from sqlalchemy.orm import Session, defer

from tenantry.auth.principal import Principal
from tenantry.db import leases
from tenantry.db.locks import lock_row
from tenantry.db.models import ClientUser, PartnerUser
from tenantry.db.worker_models import OutboxMail


def due(now: datetime) -> ColumnElement[bool]:
    return and_(
        OutboxMail.status == "pending",
        OutboxMail.next_attempt_at <= now,
        leases.lease_free(OutboxMail.lease_expires_at, now),
    )


def claim(
    db: Session, worker_id: str, now: datetime, lease_until: datetime, limit: int, shares: leases.Shares
) -> Sequence[OutboxMail]:
    """Lease up to `limit` due messages, the longest-waiting first, fairly across partners."""
    waiting = due(now)

    def lock(extra: ColumnElement[bool], n: int | None) -> Sequence[OutboxMail]:
        query = select(OutboxMail).where(waiting, extra)
        query = query.order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(n)
        return db.scalars(query.with_for_update(skip_locked=True)).all()

    mails = leases.claim_in_turn(
        db,
        OutboxMail.id,
        OutboxMail.partner_id,
        OutboxMail.next_attempt_at,
        waiting,
        limit,
        shares,
        lock,
        lambda m: (m.id, m.partner_id),
        partner_index=True,
    )
    for mail in mails:
        mail.lease_owner, mail.lease_expires_at = worker_id, lease_until
    db.flush()
    return mails


def leased(db: Session, mail_id: int, worker_id: str) -> OutboxMail | None:
    """The message, locked, if this worker still holds its lease; its body and attachment are
    not read (settling an attempt drops them or leaves them as they are)."""
    return db.scalars(
        select(OutboxMail)
        .options(defer(OutboxMail.text), defer(OutboxMail.html), defer(OutboxMail.attachment))
        .where(OutboxMail.id == mail_id, OutboxMail.lease_owner == worker_id)
        .with_for_update()
    ).one_or_none()


# What a settled message keeps of its body: nothing (an invitation's text holds its one-time link).
DROPPED_BODY: dict[str, Any] = {"text": "", "html": None, "attachment": None}


def settle_done(
    db: Session, mail_id: int, worker_id: str, now: datetime, status: str, reason: str | None
) -> bool:
    """One attempt that ended the message (`delivered`, or `logged` with no SMTP server), in one
    statement: its lease given back and its body dropped, if this worker still holds the lease.
    False when it does not (the lease passed to another worker, whose result counts)."""
    statement = (
        update(OutboxMail)
        .where(OutboxMail.id == mail_id, OutboxMail.lease_owner == worker_id)
        .values(
            attempts=OutboxMail.attempts + 1,
            last_attempt_at=now,
            last_error=reason,
            lease_owner=None,
            lease_expires_at=None,
            status=status,
            delivered_at=now if status == "delivered" else OutboxMail.delivered_at,
            next_attempt_at=None,
            **DROPPED_BODY,
        )
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult[Any], db.execute(statement)).rowcount == 1


def release(db: Session, ids: Sequence[int], worker_id: str) -> None:
    leases.release(db, OutboxMail, ids, worker_id)


def pending(db: Session, now: datetime) -> int:
    return int(db.scalar(select(func.count()).select_from(OutboxMail).where(due(now))) or 0)


def lock_sender(db: Session, principal: Principal) -> None:
    """Serialise one user's e-mail requests (PostgreSQL: the user's row; SQLite's write
    transaction is already alone), so two at once cannot both pass the daily count."""
    model = PartnerUser if principal.is_partner else ClientUser
    lock_row(db, model, principal.user_id)


def lock_actor(db: Session, actor: str) -> None:
    """`lock_sender` for a user named as history names them (`Principal.actor`); nothing for
    another actor (the command line, the system) or a user removed since."""
    kind, _, user_id = actor.partition(":")
    model = {"partner_user": PartnerUser, "client_user": ClientUser}.get(kind)
    if model is not None and user_id.isdigit():
        lock_row(db, model, int(user_id))


def sent_since(db: Session, sent_by: str, kind: str, since: datetime) -> list[tuple[datetime, int]]:
    """(when, how many recipients) of each message of `kind` the user asked for since `since`."""
    rows = db.execute(
        select(OutboxMail.created_at, OutboxMail.recipient_count)
        .where(OutboxMail.sent_by == sent_by, OutboxMail.kind == kind, OutboxMail.created_at > since)
        .order_by(OutboxMail.created_at, OutboxMail.id)
    ).all()
    return [(at, count) for at, count in rows]


def partner_user_emails(db: Session, partner_id: int) -> set[str]:
    query = select(PartnerUser.email).where(PartnerUser.partner_id == partner_id)
    return {e.lower() for e in db.scalars(query)}


def client_user_emails(db: Session, client_id: int) -> set[str]:
    query = select(ClientUser.email).where(ClientUser.client_id == client_id)
    return {e.lower() for e in db.scalars(query)}

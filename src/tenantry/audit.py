"""The audit log and the event outbox: every state-changing call leaves a trace in both places."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from tenantry.db.models import AuditEvent, Event


def audit(
    db: Session,
    *,
    partner_id: int,
    actor: str,
    action: str,
    target: str,
    at: datetime,
    client_id: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    db.add(
        AuditEvent(
            partner_id=partner_id,
            client_id=client_id,
            actor=actor,
            action=action,
            target=target,
            at=at,
            details=details or {},
        )
    )


def emit(
    db: Session,
    *,
    partner_id: int,
    type: str,
    at: datetime,
    data: dict[str, Any],
    client_id: int | None = None,
) -> str:
    """Write an event to the outbox in the same transaction as the change it describes."""
    event_id = "evt_" + uuid.uuid4().hex
    db.add(
        Event(id=event_id, partner_id=partner_id, client_id=client_id, type=type, created_at=at, data=data)
    )
    return event_id


def audit_many(db: Session, records: Sequence[dict[str, Any]]) -> None:
    """Many audit records at once (an import): one statement executed as a batch, without the ORM's
    per-object bookkeeping. Each record has `audit`'s keyword arguments."""
    if records:
        db.connection().execute(
            insert(AuditEvent), [{"client_id": None, "details": {}, **r} for r in records]
        )


def emit_many(db: Session, events: Sequence[dict[str, Any]]) -> None:
    """Many events at once (an import), as `emit` writes each: keys partner_id, client_id, type,
    at and data."""
    if events:
        db.connection().execute(
            insert(Event),
            [
                {
                    "id": "evt_" + uuid.uuid4().hex,
                    "partner_id": e["partner_id"],
                    "client_id": e.get("client_id"),
                    "type": e["type"],
                    "created_at": e["at"],
                    "data": e["data"],
                }
                for e in events
            ],
        )

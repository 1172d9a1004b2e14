"""The audit log and the event outbox: every state-changing call leaves a trace in both places."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

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

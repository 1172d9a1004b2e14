"""What a request's own transaction writes of its `Idempotency-Key` (`api.idempotency`): the mark
that its work committed. Apart from the middleware, so the request's unit of work (`api.deps`)
reaches it without the web layer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tenantry.db.models import IdempotencyRecord

# The request state's entry naming the record a request holds: (scope, key).
CLAIMED = "idempotency_claimed"


def mark_carried_out(db: Session, claimed: tuple[str, str], now: datetime) -> None:
    """Mark the record the request holds as carried out, in the request's own transaction."""
    owner, key = claimed
    db.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.scope == owner, IdempotencyRecord.key == key)
        .values(carried_out_at=now)
    )

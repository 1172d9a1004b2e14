"""What a request's own transaction writes of its `Idempotency-Key` (`api.idempotency`): the mark
that its work committed. Apart from the middleware, so the request's unit of work (`api.deps`)
reaches it without the web layer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from tenantry.db.models import IdempotencyRecord
from tenantry.errors import IdempotencyTakenOver

# The request state's entry naming the record a request holds: (scope, key, when it claimed it).
CLAIMED = "idempotency_claimed"


def mark_carried_out(db: Session, claimed: tuple[str, str, datetime], now: datetime) -> None:
    """Mark the record the request holds as carried out, in the request's own transaction; raise
    `IdempotencyTakenOver` (so nothing of the request is kept) when a retry took the record over: this
    request ran past the request time-out, was taken for dead, and the retry runs instead."""
    owner, key, claimed_at = claimed
    marked = db.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.scope == owner,
            IdempotencyRecord.key == key,
            IdempotencyRecord.created_at == claimed_at,
        )
        .values(carried_out_at=now)
    )
    if getattr(marked, "rowcount", 1) == 0:
        raise IdempotencyTakenOver(
            "This request ran past the request time-out, and a retry with the same Idempotency-Key "
            "took its place: nothing of this one was done."
        )

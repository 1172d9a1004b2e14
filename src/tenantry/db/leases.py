"""Leases on job rows (data sources, event deliveries): the SQL both kinds of job share.

A job row carries `lease_owner` and `lease_expires_at`. A worker that claims it sets both; one
that dies simply lets the lease run out, and the row is free again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.orm import InstrumentedAttribute, Session


def lease_free(expires_at: InstrumentedAttribute[datetime | None], now: datetime) -> ColumnElement[bool]:
    """No worker holds the job, or the one that did let its lease run out."""
    return or_(expires_at.is_(None), expires_at <= now)


def release(db: Session, model: Any, ids: Sequence[int], worker_id: str) -> None:
    """Give back jobs this worker claimed but will not run (it is stopping)."""
    if ids:
        db.execute(
            update(model)
            .where(model.id.in_(ids), model.lease_owner == worker_id)
            .values(lease_owner=None, lease_expires_at=None)
        )

"""Row locks that serialise requests on one object."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session


def lock_row(db: Session, model: Any, row_id: int) -> None:
    """Hold `model`'s row `row_id` until the transaction ends, so requests acting on it take turns
    (PostgreSQL; SQLite's write transaction is alone already, and FOR UPDATE is not rendered)."""
    db.execute(select(model.id).where(model.id == row_id).with_for_update())

"""All SQL about data sources. Every lookup goes through `owners.scoped`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.dashboard_models import DataSource, Klip
from tenantry.errors import NotFound
from tenantry.owners import Owner, scoped


def get_source(db: Session, principal: Principal, source_id: int, *, lock: bool = False) -> DataSource:
    query = scoped(select(DataSource), DataSource, principal).where(DataSource.id == source_id)
    if lock:
        query = query.with_for_update()
    source = db.scalars(query).one_or_none()
    if source is None:
        raise NotFound(f"No data source {source_id}.")
    return source


def get_owned_source(db: Session, owner: Owner, source_id: int) -> DataSource:
    """A data source of exactly this owner: a klip may only show its own owner's data."""
    source = db.scalars(
        select(DataSource).where(
            DataSource.id == source_id,
            DataSource.partner_id == owner.partner_id,
            DataSource.client_id.is_(None)
            if owner.client_id is None
            else DataSource.client_id == owner.client_id,
        )
    ).one_or_none()
    if source is None:
        raise NotFound(f"No data source {source_id} here.")
    return source


def list_sources(db: Session, owner: Owner, limit: int, offset: int) -> tuple[Sequence[DataSource], int]:
    where = [DataSource.partner_id == owner.partner_id]
    where.append(
        DataSource.client_id.is_(None) if owner.client_id is None else DataSource.client_id == owner.client_id
    )
    items = db.scalars(
        select(DataSource).where(*where).order_by(DataSource.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(DataSource).where(*where)) or 0
    return items, total


def in_use(db: Session, source_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Klip).where(Klip.datasource_id == source_id)) or 0

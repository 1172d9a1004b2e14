"""All SQL about data sources. Every lookup goes through `owners.scoped`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.orm import Session, defer

from tenantry.auth.principal import Principal
from tenantry.clients import repository as clients_repo
from tenantry.datasources.pages import PAGE_MAX_ROWS, rows_in, split_into_pages
from tenantry.datasources.placeholders import Context
from tenantry.db.dashboard_models import DataSource, DataSourcePage, Klip
from tenantry.db.models import Client
from tenantry.errors import NotFound
from tenantry.owners import Owner, scoped


def get_source(db: Session, principal: Principal, source_id: int, *, lock: bool = False) -> DataSource:
    # The snapshot (`rows`, up to megabytes of JSON) is loaded only if something reads it.
    query = (
        scoped(select(DataSource), DataSource, principal)
        .where(DataSource.id == source_id)
        .options(defer(DataSource.rows))
    )
    if lock:
        query = query.with_for_update(of=DataSource)
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
    # Listing never loads the snapshots themselves (up to 5 MB each).
    items = db.scalars(
        select(DataSource)
        .options(defer(DataSource.rows))
        .where(*where)
        .order_by(DataSource.id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(DataSource).where(*where)) or 0
    return items, total


def in_use(db: Session, source_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Klip).where(Klip.datasource_id == source_id)) or 0


def replace_pages(db: Session, source_id: int, rows: Sequence[dict[str, Any]]) -> None:
    """Store a new snapshot's pages in place of the old ones (same transaction as `rows`)."""
    db.execute(delete(DataSourcePage).where(DataSourcePage.data_source_id == source_id))
    pages = [
        {"data_source_id": source_id, "first_row": first, "row_count": count, "rows": text}
        for first, count, text in split_into_pages(rows)
    ]
    if pages:
        db.execute(insert(DataSourcePage), pages)


def insert_pages(db: Session, snapshots: Sequence[tuple[int, Sequence[dict[str, Any]]]]) -> None:
    """The pages of new sources' first snapshots, all in one statement (nothing to replace)."""
    pages = [
        {"data_source_id": source_id, "first_row": first, "row_count": count, "rows": text}
        for source_id, rows in snapshots
        for first, count, text in split_into_pages(rows)
    ]
    if pages:
        db.execute(insert(DataSourcePage), pages)


def first_row_columns(db: Session, source_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each source's columns (those of its first row), read from each snapshot's first page only:
    a few hundred rows at most, however large the source."""
    if not source_ids:
        return {}
    found = db.execute(
        select(DataSourcePage.data_source_id, DataSourcePage.rows).where(
            DataSourcePage.data_source_id.in_(list(source_ids)), DataSourcePage.first_row == 0
        )
    ).all()
    columns: dict[int, list[str]] = {}
    for source_id, text in found:
        rows = json.loads(text)
        columns[source_id] = list(rows[0]) if rows else []
    return columns


@dataclass(frozen=True)
class RowsPage:
    version: str
    total: int
    items: list[dict[str, Any]]


def read_rows(db: Session, source_id: int, offset: int, limit: int) -> RowsPage:
    """Rows offset..offset+limit-1 of a source's snapshot, decoding only the pages that hold them.

    One statement reads the version, the count and the pages, so they always belong together
    even when a refresh commits meanwhile.
    """
    # No snapshot holds more than a few tens of thousands of rows: a window beyond 10**9 is empty,
    # and bounding it keeps `offset + limit` inside the 32-bit integers the page columns hold.
    offset = min(offset, 10**9)
    last = offset + limit - 1
    page = DataSourcePage
    found = db.execute(
        select(DataSource.version, DataSource.row_count, page.first_row, page.rows)
        .outerjoin(
            page,
            and_(
                page.data_source_id == DataSource.id,
                # A page starts at most PAGE_MAX_ROWS rows before the window (an index range)...
                page.first_row > offset - PAGE_MAX_ROWS,
                page.first_row <= last,
                # ... and must reach into it.
                page.first_row + page.row_count > offset,
            ),
        )
        .where(DataSource.id == source_id)
        .order_by(page.first_row)
    ).all()
    if not found:
        raise NotFound(f"No data source {source_id}.")
    version, total = found[0][0], found[0][1]
    pages = [(first, text) for _, _, first, text in found if first is not None]
    return RowsPage(version, total, rows_in(pages, offset, limit))


def context_of(db: Session, source: DataSource) -> Context | None:
    """The values a client's source fills its placeholders with (None for the partner's own)."""
    if source.client_id is None:
        return None
    client = db.get(Client, source.client_id)
    if client is None:
        return None
    return Context(
        client_id=client.id,
        external_id=client.external_id,
        name=client.name,
        properties=clients_repo.properties_of(db, client.id),
    )


def get_for_fetch(db: Session, source_id: int) -> DataSource | None:
    """A source's settings without its rows (the worker's fetch reads nothing else)."""
    return db.scalars(
        select(DataSource).options(defer(DataSource.rows)).where(DataSource.id == source_id)
    ).one_or_none()


def sealed_secrets(db: Session, after_id: int, limit: int) -> Sequence[tuple[int, str]]:
    """The next `limit` sources holding secrets, by id, locked until the transaction ends."""
    found = db.execute(
        select(DataSource.id, DataSource.secrets)
        .where(DataSource.id > after_id, DataSource.secrets.is_not(None))
        .order_by(DataSource.id)
        .limit(limit)
        .with_for_update()
    ).all()
    return [(source_id, text) for source_id, text in found if text is not None]


def set_secrets(db: Session, source_id: int, sealed: str) -> None:
    db.execute(update(DataSource).where(DataSource.id == source_id).values(secrets=sealed))

"""Data-source use cases: create, change, queue a refresh, refresh one source, delete.

Services flush, never commit. Refreshes are work the platform does for the client, not calls
the client makes: they never count against API Calls per Day (seed).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.datasources import repository as repo
from tenantry.datasources.fetch import FetchError, check_rows
from tenantry.datasources.schemas import DataSourceUpdate, InlineSourceCreate, UrlSourceCreate
from tenantry.db.dashboard_models import DataSource
from tenantry.errors import InvalidInput, TenantryError
from tenantry.limits import DATA_SOURCES_PER_OWNER
from tenantry.outbound import Guard
from tenantry.owners import (
    Owner,
    audit_change,
    changing,
    check_content_limit,
    require_builder,
    require_reader,
)
from tenantry.policy import Capability, allows

Fetch = Callable[[str, str], list[dict[str, Any]]]

# Inline rows are held to the same size as a downloaded file (SPEC §12 "Limits"); the row count
# (50,000) is checked by the schema.
INLINE_MAX_BYTES = 5 * 1024 * 1024


class InUse(TenantryError):
    code, status, title = "in_use", 409, "Still in use"


class NotRefreshable(TenantryError):
    code, status, title = "not_refreshable", 409, "Nothing to refresh"


def readable_source(db: Session, principal: Principal, source_id: int) -> DataSource:
    """A data source with its settings and rows, for those who may read them (not members)."""
    source = repo.get_source(db, principal, source_id)
    require_reader(principal)
    return source


def read_rows(db: Session, principal: Principal, source_id: int, offset: int, limit: int) -> repo.RowsPage:
    """A window of a data source's last good snapshot, for those who may read it."""
    return repo.read_rows(db, readable_source(db, principal, source_id).id, offset, limit)


def sources_of(
    db: Session, principal: Principal, owner: Owner, limit: int, offset: int
) -> tuple[Sequence[DataSource], int]:
    require_reader(principal)
    return repo.list_sources(db, owner, limit, offset)


def _store_rows(db: Session, source: DataSource, rows: list[dict[str, Any]], now: datetime) -> None:
    """The one writer of a snapshot: the rows (for drawing) and their pages (for listing)."""
    if source.id is None:
        db.flush()
    source.rows = rows
    repo.replace_pages(db, source.id, rows)
    source.row_count = len(rows)
    source.version = uuid.uuid4().hex
    source.last_refreshed_at = now
    source.last_error = None
    source.refresh_fail_count = 0


def _schedule(source: DataSource, now: datetime) -> None:
    interval = source.refresh_interval
    source.next_refresh_at = now + timedelta(seconds=interval) if interval and source.kind == "url" else None


def create_source(
    db: Session,
    clock: Clock,
    principal: Principal,
    owner: Owner,
    data: UrlSourceCreate | InlineSourceCreate,
    guard: Guard,
) -> DataSource:
    require_builder(principal)
    now = clock.now()
    owner.require(Capability.BUILD_CONTENT, now)
    check_content_limit(db, owner, DataSource, DATA_SOURCES_PER_OWNER)
    inline = _inline_rows(data.rows) if isinstance(data, InlineSourceCreate) else None
    source = DataSource(
        partner_id=owner.partner_id,
        client_id=owner.client_id,
        name=data.name,
        kind=data.kind,
        rows=[],
        row_count=0,
        version="",
        refresh_fail_count=0,
        created_at=now,
        updated_at=now,
    )
    if isinstance(data, UrlSourceCreate):
        guard.require_allowed(str(data.url))
        if data.refresh_interval is not None:
            owner.require(Capability.SET_REFRESH_RATE, now)
        source.url, source.format, source.refresh_interval = str(data.url), data.format, data.refresh_interval
        _schedule(source, now)
        # A new url source is loaded once, by a queued refresh, where the status allows it.
        if allows(Capability.INITIAL_LOAD, owner.status(now)):
            source.refresh_requested_at = now
    db.add(source)
    if inline is not None:
        _store_rows(db, source, inline, now)
    db.flush()
    audit_change(db, principal, source, "datasource.created", now, {"name": source.name, "kind": source.kind})
    return source


def _inline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    try:
        checked = check_rows(rows)
    except FetchError as exc:
        raise InvalidInput(str(exc), field="rows") from None
    size = len(json.dumps(checked, ensure_ascii=False, separators=(",", ":")).encode())
    if size > INLINE_MAX_BYTES:
        raise InvalidInput(
            f"Inline rows are limited to {INLINE_MAX_BYTES // (1024 * 1024)} MB; "
            f"these take {size / (1024 * 1024):.1f} MB as JSON.",
            field="rows",
            limit_bytes=INLINE_MAX_BYTES,
        )
    return checked


def update_source(
    db: Session, clock: Clock, principal: Principal, source_id: int, data: DataSourceUpdate, guard: Guard
) -> DataSource:
    now = clock.now()
    source = repo.get_source(db, principal, source_id)
    owner = changing(db, principal, source, Capability.BUILD_CONTENT, now)
    fields = data.model_fields_set
    if source.kind == "inline" and fields & {"url", "format", "refresh_interval"}:
        raise InvalidInput("An inline data source has no URL, format or refresh rate; send `rows` instead.")
    if source.kind == "url" and "rows" in fields:
        raise InvalidInput(
            "A url data source loads its rows from its URL; `rows` is only for inline sources."
        )
    changed: dict[str, Any] = {}
    if data.name is not None and data.name != source.name:
        source.name = changed["name"] = data.name
    if "refresh_interval" in fields and data.refresh_interval != source.refresh_interval:
        owner.require(Capability.SET_REFRESH_RATE, now)
        source.refresh_interval = changed["refresh_interval"] = data.refresh_interval
        _schedule(source, now)
    new_url = str(data.url) if data.url is not None else source.url
    new_format = data.format or source.format
    if source.kind == "url" and (new_url, new_format) != (source.url, source.format):
        if new_url is not None:
            guard.require_allowed(new_url)
        source.url, source.format = new_url, new_format
        changed.update(url=new_url, format=new_format)
        if allows(Capability.QUEUE_REFRESH, owner.status(now)):
            source.refresh_requested_at = now
    if data.rows is not None:
        _store_rows(db, source, _inline_rows(data.rows), now)
        changed["rows"] = len(data.rows)
    if changed:
        source.updated_at = now
        audit_change(db, principal, source, "datasource.updated", now, changed)
    db.flush()
    return source


def queue_refresh(db: Session, clock: Clock, principal: Principal, source_id: int) -> DataSource:
    """Ask the worker to refresh a source now (seed: allowed in Setup too, not when disabled or expired)."""
    now = clock.now()
    source = repo.get_source(db, principal, source_id)
    changing(db, principal, source, Capability.QUEUE_REFRESH, now)
    if source.kind != "url":
        raise NotRefreshable("An inline data source has nothing to fetch; send new `rows` to change it.")
    if source.refresh_requested_at is None:
        source.refresh_requested_at = now
    audit_change(db, principal, source, "datasource.refresh_queued", now, {})
    db.flush()
    return source


def delete_source(db: Session, clock: Clock, principal: Principal, source_id: int) -> None:
    now = clock.now()
    source = repo.get_source(db, principal, source_id)
    changing(db, principal, source, Capability.BUILD_CONTENT, now)
    klips = repo.in_use(db, source.id)
    if klips:
        raise InUse(f"The data source is shown by {klips} klip(s); remove them first.", klips=klips)
    audit_change(db, principal, source, "datasource.deleted", now, {"name": source.name})
    db.delete(source)
    db.flush()


@dataclass(frozen=True)
class RefreshOutcome:
    ok: bool
    row_count: int
    error: str | None = None


def refresh_source(db: Session, source: DataSource, now: datetime, fetch: Fetch) -> RefreshOutcome:
    """Fetch one `url` source now. Success stores the rows and a new version; a failure keeps
    the last good snapshot and records `last_error` and `refresh_fail_count`.

    The caller decides whether the status allows it (queued: QUEUE_REFRESH / INITIAL_LOAD when
    queued, AUTO_REFRESH when scheduled) and commits.
    """
    if source.kind != "url" or not source.url or not source.format:
        raise NotRefreshable("Only a url data source can be refreshed.")
    source.refresh_requested_at = None
    _schedule(source, now)
    try:
        rows = fetch(source.url, source.format)
    except FetchError as exc:
        source.last_error = str(exc)
        source.refresh_fail_count += 1
        db.flush()
        return RefreshOutcome(False, source.row_count, str(exc))
    _store_rows(db, source, rows, now)
    db.flush()
    return RefreshOutcome(True, len(rows))

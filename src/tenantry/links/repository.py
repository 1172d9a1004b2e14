"""All SQL about published links. API lookups go through `owners.scoped`; the public page
finds a link only by the hash of its token."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, bindparam, cast, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.dashboards.repository import KLIP_DEFINITION, PlacedKlip, placed_klips
from tenantry.db.dashboard_models import DataSource, Klip, PublishedLink
from tenantry.db.models import Client, Dashboard, Partner
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import Reads
from tenantry.errors import NotFound
from tenantry.lifecycle import Trial
from tenantry.owners import scoped


def get_link(db: Session, principal: Principal, link_id: int, *, lock: bool = False) -> PublishedLink:
    """A published link the caller may see (else 404); with `lock`, held until the transaction ends."""
    query = scoped(select(PublishedLink), PublishedLink, principal).where(PublishedLink.id == link_id)
    if lock:
        query = query.with_for_update(of=PublishedLink).execution_options(populate_existing=True)
    link = db.scalars(query).one_or_none()
    if link is None:
        raise NotFound(f"No published link {link_id}.")
    return link


def list_links(
    db: Session, dashboard_id: int, limit: int, offset: int
) -> tuple[Sequence[PublishedLink], int]:
    where = PublishedLink.dashboard_id == dashboard_id
    items = db.scalars(
        select(PublishedLink).where(where).order_by(PublishedLink.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(PublishedLink).where(where)) or 0
    return items, total


@dataclass(frozen=True)
class PublicBoard:
    id: int
    name: str
    filters: list[dict[str, Any]]
    # The client's timezone, else the partner's: the day date filters (`last_7_days`) count from.
    timezone: str


@dataclass(frozen=True)
class PublicLink:
    """What the public page needs: the link, its client's status fields, its dashboard, and the
    dashboard's klips with their data versions (two queries, no ORM objects)."""

    id: int
    partner_id: int
    revoked_at: datetime | None
    password_hash: str | None
    last_accessed_at: datetime | None
    allowed_origins: list[str] | None  # None: any site may frame the page
    client_status: str | None  # None: the partner's own dashboard
    trial: Trial | None
    dashboard: PublicBoard
    klips: list[PlacedKlip]
    client_id: int | None = None  # None: the partner's own dashboard
    # The page's data version for each choice of filter values, worked out once (`links.web`): a
    # link read on the event loop is one object for as long as its rows are the same.
    versions: dict[str, str] = field(default_factory=dict, compare=False, repr=False)


_PUBLIC = (
    select(
        PublishedLink.id,
        PublishedLink.partner_id,
        PublishedLink.revoked_at,
        PublishedLink.password_hash,
        PublishedLink.last_accessed_at,
        # The JSON columns as text, decoded once per link (`_link_of`): no driver decodes them.
        cast(PublishedLink.allowed_origins, Text).label("allowed_origins"),
        PublishedLink.client_id,
        Client.status,
        Client.trial_started_at,
        Client.trial_ends_at,
        Client.trial_extended_at,
        Dashboard.id.label("dashboard_id"),
        Dashboard.name.label("dashboard_name"),
        cast(Dashboard.filters, Text).label("dashboard_filters"),
        # The days date filters count from: the client's own timezone, else the partner's.
        func.coalesce(Client.timezone, Partner.timezone).label("timezone"),
    )
    .join(Dashboard, Dashboard.id == PublishedLink.dashboard_id)
    .join(Partner, Partner.id == PublishedLink.partner_id)
    .outerjoin(Client, Client.id == PublishedLink.client_id)
    .where(PublishedLink.token_hash == bindparam("token_hash"))
)


# The public page's one read on the event loop: the link as above with its dashboard's klips, one
# row per klip in order (one row with no klip for an empty dashboard). A round trip fewer than
# reading the klips after the link, which is most of a page view's cost on PostgreSQL.
_KLIP_COLUMNS = 8
_PUBLIC_WITH_KLIPS = PreparedSelect(
    _PUBLIC.add_columns(
        Klip.id.label("klip_id"),
        Klip.kind.label("klip_kind"),
        Klip.title.label("klip_title"),
        KLIP_DEFINITION.label("klip_definition"),
        Klip.datasource_id.label("klip_datasource_id"),
        func.coalesce(DataSource.version, "").label("klip_version"),
        Klip.size_w.label("klip_size_w"),
        Klip.size_h.label("klip_size_h"),
    )
    .outerjoin(Klip, Klip.dashboard_id == PublishedLink.dashboard_id)
    .outerjoin(DataSource, DataSource.id == Klip.datasource_id)
    .order_by(Klip.position),
    memo=1024,
)


def public_link(db: Connection, token_hash: str) -> PublicLink | None:
    row = db.execute(_PUBLIC, {"token_hash": token_hash}).one_or_none()
    if row is None:
        return None
    klips = placed_klips(db, row.dashboard_id) if row.revoked_at is None else []
    return _public_link(row, klips)


async def public_link_async(reads: Reads, token_hash: str) -> PublicLink | None:
    """The same, read without leaving the event loop (`db.reads`), in one prepared query."""
    rows = await reads.run(_PUBLIC_WITH_KLIPS, token_hash=token_hash)
    return _link_of(tuple(rows)) if rows else None


@lru_cache(maxsize=1024)
def _link_of(rows: tuple[Any, ...]) -> PublicLink:
    """The link its rows describe, made once for the same rows (the same link, client status,
    dashboard and klips, to the data versions): a page's view makes nothing when nothing changed.
    Its rows are remembered (`PreparedSelect`'s memo), so looking them up here hashes values whose
    hashes are already known. Every column of the statement is hashable (its JSON comes as text)."""
    row = rows[0]
    klips = (
        [PlacedKlip(*found[-_KLIP_COLUMNS:]) for found in rows if found.klip_id is not None]
        if row.revoked_at is None
        else []
    )
    return _public_link(row, klips)


def _public_link(row: Any, klips: list[PlacedKlip]) -> PublicLink:
    started, ends = row.trial_started_at, row.trial_ends_at
    origins, filters = row.allowed_origins, row.dashboard_filters
    return PublicLink(
        id=row.id,
        partner_id=row.partner_id,
        revoked_at=row.revoked_at,
        password_hash=row.password_hash,
        last_accessed_at=row.last_accessed_at,
        allowed_origins=json.loads(origins) if origins is not None else None,
        client_status=row.status,
        trial=Trial(started, ends, row.trial_extended_at) if started and ends else None,
        dashboard=PublicBoard(
            row.dashboard_id, row.dashboard_name, json.loads(filters or "null") or [], row.timezone
        ),
        klips=klips,
        client_id=row.client_id,
    )


def mark_accessed(db: Connection, link_id: int, now: datetime, not_since: datetime) -> None:
    db.execute(
        update(PublishedLink)
        .where(
            PublishedLink.id == link_id,
            or_(PublishedLink.last_accessed_at.is_(None), PublishedLink.last_accessed_at <= not_since),
        )
        .values(last_accessed_at=now)
    )

"""All SQL about dashboards, klips and shares. Every lookup goes through `scoped_dashboards`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, Text, bindparam, cast, delete, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.dashboard_models import DashboardShare, DataSource, Klip, PublishedLink
from tenantry.db.models import ClientUser, Dashboard
from tenantry.errors import NotFound
from tenantry.klips.spec import KlipBody, Size, stored_definition
from tenantry.owners import Owner, only_shared, scoped


def scoped_dashboards(principal: Principal) -> Select[Any]:
    """The dashboards this caller may see: its partner's; a client user only its client's, and a
    client member only those shared with them."""
    query = scoped(select(Dashboard), Dashboard, principal)
    if only_shared(principal):
        query = query.where(Dashboard.id.in_(_shared_with(principal)))
    return query


def _shared_with(principal: Principal) -> Select[Any]:
    return select(DashboardShare.dashboard_id).where(DashboardShare.client_user_id == principal.user_id)


def get_dashboard(db: Session, principal: Principal, dashboard_id: int, *, lock: bool = False) -> Dashboard:
    """A dashboard the caller may see (else 404); with `lock`, its row is held until the
    transaction ends, so requests that replace its klips, shares or layout take turns (on
    PostgreSQL; SQLite's write transaction is alone already)."""
    query = scoped_dashboards(principal).where(Dashboard.id == dashboard_id)
    if lock:
        query = query.with_for_update(of=Dashboard).execution_options(populate_existing=True)
    dashboard = db.scalars(query).one_or_none()
    if dashboard is None:
        raise NotFound(f"No dashboard {dashboard_id}.")
    return dashboard


def list_dashboards(
    db: Session, owner: Owner, limit: int, offset: int, principal: Principal | None = None
) -> tuple[Sequence[Dashboard], int]:
    """An owner's dashboards, oldest first; for a client member only those shared with them."""
    where = [
        Dashboard.partner_id == owner.partner_id,
        Dashboard.client_id.is_(None) if owner.client_id is None else Dashboard.client_id == owner.client_id,
    ]
    if principal is not None and only_shared(principal):
        where.append(Dashboard.id.in_(_shared_with(principal)))
    items = db.scalars(
        select(Dashboard).where(*where).order_by(Dashboard.id).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(Dashboard).where(*where)) or 0
    return items, total


def klips_of(db: Session, dashboard_ids: Iterable[int]) -> dict[int, list[Klip]]:
    ids = list(dashboard_ids)
    found: dict[int, list[Klip]] = {i: [] for i in ids}
    if ids:
        for klip in db.scalars(
            select(Klip).where(Klip.dashboard_id.in_(ids)).order_by(Klip.dashboard_id, Klip.position)
        ):
            found[klip.dashboard_id].append(klip)
    return found


@dataclass(frozen=True)
class PlacedKlip:
    """A klip as the live view and the exports need it: its definition, size and data's version."""

    id: int
    kind: str
    title: str
    definition: str  # the definition as stored JSON text: decoded only to draw
    datasource_id: int | None  # None: a text klip
    version: str  # its source's data version ("" for a text klip)
    size_w: int
    size_h: int

    @property
    def size(self) -> Size:
        return Size(w=self.size_w, h=self.size_h)

    def body(self) -> KlipBody:
        """The klip's whole definition (ValidationError if what is stored no longer fits)."""
        stored: dict[str, Any] = stored_definition(json.loads(self.definition))
        return KlipBody.model_validate({**stored, "kind": self.kind, "datasource_id": self.datasource_id})


# The definition as text, straight from the database (CAST, so no driver decodes it on the way).
KLIP_DEFINITION = cast(Klip.definition, Text)


# Built once: the live page asks this on every view, and building a statement costs more than
# running it. An outer join: a text klip has no source.
_PLACED = (
    select(
        Klip.id,
        Klip.kind,
        Klip.title,
        KLIP_DEFINITION,
        Klip.datasource_id,
        func.coalesce(DataSource.version, ""),
        Klip.size_w,
        Klip.size_h,
    )
    .outerjoin(DataSource, DataSource.id == Klip.datasource_id)
    .where(Klip.dashboard_id == bindparam("dashboard_id"))
    .order_by(Klip.position)
)


def placed_klips(db: Session | Connection, dashboard_id: int) -> list[PlacedKlip]:
    """A dashboard's klips in order with their sources' versions, without loading any rows."""
    return [PlacedKlip(*row) for row in db.execute(_PLACED, {"dashboard_id": dashboard_id})]


def rows_of(
    db: Session | Connection, source_ids: Iterable[int | None]
) -> dict[int, tuple[str, list[dict[str, Any]]]]:
    """The snapshots (version, rows) of some data sources, in one query."""
    ids = list({i for i in source_ids if i is not None})
    if not ids:
        return {}
    result = db.execute(
        select(DataSource.id, DataSource.version, DataSource.rows).where(DataSource.id.in_(ids))
    )
    return {source_id: (version, rows or []) for source_id, version, rows in result}


def versions_of(db: Session | Connection, source_ids: Iterable[int | None]) -> dict[int, str]:
    """The snapshot versions of some data sources, without their rows, in one query."""
    ids = list({i for i in source_ids if i is not None})
    if not ids:
        return {}
    found = db.execute(select(DataSource.id, DataSource.version).where(DataSource.id.in_(ids)))
    return {source_id: version for source_id, version in found}


def get_klip(db: Session, dashboard_id: int, klip_id: int) -> Klip:
    """A klip of this dashboard (found through `get_dashboard`, so already the caller's)."""
    klip = db.scalars(select(Klip).where(Klip.id == klip_id, Klip.dashboard_id == dashboard_id)).one_or_none()
    if klip is None:
        raise NotFound(f"No klip {klip_id} on dashboard {dashboard_id}.")
    return klip


def replace_klips(db: Session, dashboard_id: int, klips: list[Klip]) -> None:
    db.execute(delete(Klip).where(Klip.dashboard_id == dashboard_id))
    db.add_all(klips)


def shares_of(db: Session, dashboard_ids: Iterable[int]) -> dict[int, list[int]]:
    ids = list(dashboard_ids)
    found: dict[int, list[int]] = {i: [] for i in ids}
    if ids:
        for dashboard_id, user_id in db.execute(
            select(DashboardShare.dashboard_id, DashboardShare.client_user_id)
            .where(DashboardShare.dashboard_id.in_(ids))
            .order_by(DashboardShare.client_user_id)
        ):
            found[dashboard_id].append(user_id)
    return found


def client_user_ids(db: Session, client_id: int | None, user_ids: Iterable[int]) -> set[int]:
    ids = list(set(user_ids))
    if client_id is None or not ids:
        return set()
    return set(
        db.scalars(select(ClientUser.id).where(ClientUser.client_id == client_id, ClientUser.id.in_(ids)))
    )


def set_shares(db: Session, dashboard_id: int, user_ids: set[int], now: datetime) -> None:
    current = set(shares_of(db, [dashboard_id])[dashboard_id])
    if current - user_ids:
        db.execute(
            delete(DashboardShare).where(
                DashboardShare.dashboard_id == dashboard_id,
                DashboardShare.client_user_id.in_(current - user_ids),
            )
        )
    db.add_all(
        DashboardShare(dashboard_id=dashboard_id, client_user_id=u, created_at=now)
        for u in user_ids - current
    )


def live_link_count(db: Session, dashboard_id: int) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(PublishedLink)
            .where(PublishedLink.dashboard_id == dashboard_id, PublishedLink.revoked_at.is_(None))
        )
        or 0
    )


def delete_dashboard(db: Session, dashboard_id: int) -> None:
    # Foreign keys cascade to its klips, shares and published links.
    db.execute(delete(Dashboard).where(Dashboard.id == dashboard_id))


def visible_dashboards(db: Session, principal: Principal, limit: int = 200) -> Sequence[Dashboard]:
    """The dashboards a caller may open, oldest first (the client portal's list)."""
    return db.scalars(scoped_dashboards(principal).order_by(Dashboard.id).limit(limit)).all()

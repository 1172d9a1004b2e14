"""Dashboard use cases: create, change, delete, share with client users.

A client's dashboards count against its allocation in Trial and Active; the partner's own count
against the plan's pool. Deleting a dashboard gives back the dashboard and its live links.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from tenantry import limits
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.dashboards import repository as repo
from tenantry.dashboards.schemas import DashboardCreate, DashboardOut, DashboardUpdate, KlipIn
from tenantry.datasources import repository as sources_repo
from tenantry.db.dashboard_models import Klip
from tenantry.db.models import Dashboard
from tenantry.errors import NotFound
from tenantry.owners import (
    Owner,
    audit_change,
    changing,
    check_content_limit,
    give_back,
    only_shared,
    require_builder,
    take_one,
)
from tenantry.policy import Capability


def dashboard_outs(
    db: Session, dashboards: Sequence[Dashboard], principal: Principal | None = None
) -> list[DashboardOut]:
    """The dashboards as the API shows them, their klips and shares read in two queries."""
    ids = [d.id for d in dashboards]
    klips, shares = repo.klips_of(db, ids), repo.shares_of(db, ids)
    if principal is not None and only_shared(principal):
        # A member learns nothing of the client's other users, not even who else sees a dashboard.
        shares = {i: [u for u in users if u == principal.user_id] for i, users in shares.items()}
    return [DashboardOut.of(d, klips[d.id], shares[d.id]) for d in dashboards]


def dashboard_out(db: Session, principal: Principal, dashboard: Dashboard) -> DashboardOut:
    (out,) = dashboard_outs(db, [dashboard], principal)
    return out


def readable_dashboard(db: Session, principal: Principal, dashboard_id: int) -> DashboardOut:
    """One dashboard the caller may see."""
    return dashboard_out(db, principal, repo.get_dashboard(db, principal, dashboard_id))


def dashboards_of(
    db: Session, principal: Principal, owner: Owner, limit: int, offset: int
) -> tuple[list[DashboardOut], int]:
    """A page of an owner's dashboards, oldest first (for a member only those shared with them)."""
    items, total = repo.list_dashboards(db, owner, limit, offset, principal)
    return dashboard_outs(db, items, principal), total


def _klips(db: Session, owner: Owner, dashboard_id: int, klips: list[KlipIn]) -> list[Klip]:
    made = []
    for position, klip in enumerate(klips):
        # Only the owner's own data: another client's source is "not found", never shown.
        source = sources_repo.get_owned_source(db, owner, klip.datasource_id)
        made.append(
            Klip(
                dashboard_id=dashboard_id,
                position=position,
                title=klip.title,
                kind=klip.kind,
                datasource_id=source.id,
                columns=klip.columns.model_dump(exclude_none=True),
            )
        )
    return made


def create_dashboard(
    db: Session, clock: Clock, principal: Principal, owner: Owner, data: DashboardCreate
) -> Dashboard:
    require_builder(principal)
    now = clock.now()
    owner.require(Capability.BUILD_CONTENT, now)
    limits.check_room(limits.KLIPS_PER_DASHBOARD, 0, len(data.klips))
    check_content_limit(db, owner, Dashboard, limits.DASHBOARDS_PER_OWNER)
    take_one(db, owner, "dashboards")
    dashboard = Dashboard(
        partner_id=owner.partner_id, client_id=owner.client_id, name=data.name, created_at=now, updated_at=now
    )
    db.add(dashboard)
    db.flush()
    db.add_all(_klips(db, owner, dashboard.id, data.klips))
    audit_change(
        db, principal, dashboard, "dashboard.created", now, {"name": data.name, "klips": len(data.klips)}
    )
    db.flush()
    return dashboard


def update_dashboard(
    db: Session, clock: Clock, principal: Principal, dashboard_id: int, data: DashboardUpdate
) -> Dashboard:
    now = clock.now()
    dashboard = repo.get_dashboard(db, principal, dashboard_id)
    owner = changing(db, principal, dashboard, Capability.BUILD_CONTENT, now)
    changed: dict[str, Any] = {}
    if data.name is not None and data.name != dashboard.name:
        dashboard.name = changed["name"] = data.name
    if data.klips is not None:
        limits.check_room(limits.KLIPS_PER_DASHBOARD, 0, len(data.klips))
        klips = _klips(db, owner, dashboard.id, data.klips)
        repo.replace_klips(db, dashboard.id, klips)
        changed["klips"] = len(klips)
    if changed:
        dashboard.updated_at = now
        audit_change(db, principal, dashboard, "dashboard.updated", now, changed)
    db.flush()
    return dashboard


def delete_dashboard(db: Session, clock: Clock, principal: Principal, dashboard_id: int) -> None:
    now = clock.now()
    dashboard = repo.get_dashboard(db, principal, dashboard_id)
    owner = changing(db, principal, dashboard, Capability.BUILD_CONTENT, now)
    give_back(db, owner, "published_links", repo.live_link_count(db, dashboard.id))
    give_back(db, owner, "dashboards")
    audit_change(db, principal, dashboard, "dashboard.deleted", now, {"name": dashboard.name})
    db.flush()
    repo.delete_dashboard(db, dashboard.id)
    db.expunge(dashboard)


def set_shares(
    db: Session, clock: Clock, principal: Principal, dashboard_id: int, user_ids: list[int]
) -> list[int]:
    """Share a dashboard with exactly these client users (seed: not in Setup)."""
    now = clock.now()
    dashboard = repo.get_dashboard(db, principal, dashboard_id)
    changing(db, principal, dashboard, Capability.SHARE_DASHBOARDS, now)
    wanted = set(user_ids)
    known = repo.client_user_ids(db, dashboard.client_id, wanted)
    unknown = sorted(wanted - known)
    if unknown:
        raise NotFound(f"No user {unknown[0]} in this dashboard's client.", user_ids=unknown)
    repo.set_shares(db, dashboard.id, wanted, now)
    audit_change(db, principal, dashboard, "dashboard.shared", now, {"user_ids": sorted(wanted)})
    db.flush()
    return sorted(wanted)

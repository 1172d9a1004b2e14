"""Dashboard endpoints (SPEC §9). Each authenticates, calls one service function, returns a schema."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from tenantry.api.deps import Caller, ClockDep, DbSession, PageDep, PartnerCaller, PathId
from tenantry.auth.principal import Principal
from tenantry.dashboards import repository as repo
from tenantry.dashboards import service
from tenantry.dashboards.schemas import (
    DashboardCreate,
    DashboardList,
    DashboardOut,
    DashboardUpdate,
    SharesIn,
    SharesOut,
)
from tenantry.db.models import Dashboard
from tenantry.owners import Owner, client_owner, partner_owner

router = APIRouter(prefix="/api/1", tags=["dashboards"])


def _out(db: DbSession, caller: Principal, dashboard: Dashboard) -> DashboardOut:
    return DashboardOut.model_validate(service.dashboard_views(db, [dashboard], caller)[0])


def _list(db: DbSession, caller: Principal, owner: Owner, page: PageDep) -> DashboardList:
    items, total = repo.list_dashboards(db, owner, page.limit, page.offset, caller)
    views = service.dashboard_views(db, list(items), caller)
    return DashboardList(
        items=[DashboardOut.model_validate(v) for v in views],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post(
    "/clients/{client_id}/dashboards", status_code=status.HTTP_201_CREATED, response_model=DashboardOut
)
def create_client_dashboard(
    client_id: PathId, body: DashboardCreate, db: DbSession, clock: ClockDep, caller: Caller
) -> DashboardOut:
    """Create a client's dashboard with its ordered klips (within the allocation in Trial and Active)."""
    return _out(
        db, caller, service.create_dashboard(db, clock, caller, client_owner(db, caller, client_id), body)
    )


@router.get("/clients/{client_id}/dashboards", response_model=DashboardList)
def list_client_dashboards(client_id: PathId, db: DbSession, caller: Caller, page: PageDep) -> DashboardList:
    """A client's dashboards, oldest first."""
    return _list(db, caller, client_owner(db, caller, client_id), page)


@router.post("/partner/dashboards", status_code=status.HTTP_201_CREATED, response_model=DashboardOut)
def create_partner_dashboard(
    body: DashboardCreate, db: DbSession, clock: ClockDep, caller: PartnerCaller
) -> DashboardOut:
    """Create one of the partner's own dashboards (it must fit the plan's pool)."""
    return _out(db, caller, service.create_dashboard(db, clock, caller, partner_owner(caller), body))


@router.get("/partner/dashboards", response_model=DashboardList)
def list_partner_dashboards(db: DbSession, caller: PartnerCaller, page: PageDep) -> DashboardList:
    """The partner's own dashboards, oldest first."""
    return _list(db, caller, partner_owner(caller), page)


@router.get("/dashboards/{dashboard_id}", response_model=DashboardOut)
def get_dashboard(dashboard_id: PathId, db: DbSession, caller: Caller) -> DashboardOut:
    """One dashboard, its klips in order and the client users it is shared with."""
    return _out(db, caller, repo.get_dashboard(db, caller, dashboard_id))


@router.patch("/dashboards/{dashboard_id}", response_model=DashboardOut)
def update_dashboard(
    dashboard_id: PathId, body: DashboardUpdate, db: DbSession, clock: ClockDep, caller: Caller
) -> DashboardOut:
    """Rename a dashboard or replace its klips."""
    return _out(db, caller, service.update_dashboard(db, clock, caller, dashboard_id, body))


@router.delete("/dashboards/{dashboard_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dashboard(dashboard_id: PathId, db: DbSession, clock: ClockDep, caller: Caller) -> Response:
    """Remove a dashboard, its klips and its published links; the allocation is given back."""
    service.delete_dashboard(db, clock, caller, dashboard_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/dashboards/{dashboard_id}/shares", response_model=SharesOut)
def set_shares(
    dashboard_id: PathId, body: SharesIn, db: DbSession, clock: ClockDep, caller: Caller
) -> SharesOut:
    """Share the dashboard with exactly these client users (not in Setup, seed)."""
    user_ids = service.set_shares(db, clock, caller, dashboard_id, body.user_ids)
    return SharesOut(dashboard_id=dashboard_id, user_ids=user_ids)

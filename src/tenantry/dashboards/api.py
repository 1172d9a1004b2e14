"""Dashboard and klip endpoints (SPEC §9, §13). Each authenticates, calls one use case, returns a schema."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from sqlalchemy.orm import Session

from tenantry.api.deps import Caller, ClockDep, Page, PageDep, PartnerCaller, PathId, WorkDep, services
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.dashboards import service
from tenantry.dashboards.schemas import (
    DashboardCreate,
    DashboardList,
    DashboardOut,
    DashboardUpdate,
    FiltersIn,
    KlipIn,
    KlipOut,
    KlipPatch,
    LayoutIn,
    PreviewIn,
    PreviewOut,
    SharesIn,
    SharesOut,
)
from tenantry.owners import Owner, client_owner, partner_owner

router = APIRouter(prefix="/api/1", tags=["dashboards"])


def _owner(db: Session, caller: Principal, client_id: int | None) -> Owner:
    """A client's account, or the partner's own when no client is named."""
    return partner_owner(caller) if client_id is None else client_owner(db, caller, client_id)


def _create(
    db: Session, clock: Clock, caller: Principal, client_id: int | None, body: DashboardCreate
) -> DashboardOut:
    owner = _owner(db, caller, client_id)
    return service.dashboard_out(db, caller, service.create_dashboard(db, clock, caller, owner, body))


def _list(db: Session, caller: Principal, client_id: int | None, page: Page) -> DashboardList:
    items, total = service.dashboards_of(db, caller, _owner(db, caller, client_id), page.limit, page.offset)
    return DashboardList(items=items, total=total, limit=page.limit, offset=page.offset)


def _update(
    db: Session, clock: Clock, caller: Principal, dashboard_id: int, body: DashboardUpdate
) -> DashboardOut:
    return service.dashboard_out(db, caller, service.update_dashboard(db, clock, caller, dashboard_id, body))


@router.post(
    "/clients/{client_id}/dashboards", status_code=status.HTTP_201_CREATED, response_model=DashboardOut
)
async def create_client_dashboard(
    client_id: PathId, body: DashboardCreate, work: WorkDep, clock: ClockDep, caller: Caller
) -> DashboardOut:
    """Create a client's dashboard with its ordered klips (within the allocation in Trial and Active)."""
    return await work(_create, clock, caller, client_id, body)


@router.get("/clients/{client_id}/dashboards", response_model=DashboardList)
async def list_client_dashboards(
    client_id: PathId, work: WorkDep, caller: Caller, page: PageDep
) -> DashboardList:
    """A client's dashboards, oldest first."""
    return await work(_list, caller, client_id, page)


@router.post("/partner/dashboards", status_code=status.HTTP_201_CREATED, response_model=DashboardOut)
async def create_partner_dashboard(
    body: DashboardCreate, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> DashboardOut:
    """Create one of the partner's own dashboards (it must fit the plan's pool)."""
    return await work(_create, clock, caller, None, body)


@router.get("/partner/dashboards", response_model=DashboardList)
async def list_partner_dashboards(work: WorkDep, caller: PartnerCaller, page: PageDep) -> DashboardList:
    """The partner's own dashboards, oldest first."""
    return await work(_list, caller, None, page)


@router.get("/dashboards/{dashboard_id}", response_model=DashboardOut)
async def get_dashboard(dashboard_id: PathId, work: WorkDep, caller: Caller) -> DashboardOut:
    """One dashboard, its klips in order and the client users it is shared with."""
    return await work(service.readable_dashboard, caller, dashboard_id)


@router.patch("/dashboards/{dashboard_id}", response_model=DashboardOut)
async def update_dashboard(
    dashboard_id: PathId, body: DashboardUpdate, work: WorkDep, clock: ClockDep, caller: Caller
) -> DashboardOut:
    """Rename a dashboard or replace its klips."""
    return await work(_update, clock, caller, dashboard_id, body)


@router.delete("/dashboards/{dashboard_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_dashboard(dashboard_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller) -> Response:
    """Remove a dashboard, its klips and its published links; the allocation is given back."""
    await work(service.delete_dashboard, clock, caller, dashboard_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/dashboards/{dashboard_id}/shares", response_model=SharesOut)
async def set_shares(
    dashboard_id: PathId, body: SharesIn, work: WorkDep, clock: ClockDep, caller: Caller
) -> SharesOut:
    """Share the dashboard with exactly these client users (not in Setup, seed)."""
    user_ids = await work(service.set_shares, clock, caller, dashboard_id, body.user_ids)
    return SharesOut(dashboard_id=dashboard_id, user_ids=user_ids)


@router.post("/dashboards/{dashboard_id}/klips", status_code=status.HTTP_201_CREATED, response_model=KlipOut)
async def add_klip(
    dashboard_id: PathId, body: KlipIn, work: WorkDep, clock: ClockDep, caller: Caller
) -> KlipOut:
    """Add a klip at the end of the dashboard (its query and columns checked against its source)."""
    return KlipOut.of(await work(service.add_klip, clock, caller, dashboard_id, body))


@router.patch("/dashboards/{dashboard_id}/klips/{klip_id}", response_model=KlipOut)
async def update_klip(
    dashboard_id: PathId, klip_id: PathId, body: KlipPatch, work: WorkDep, clock: ClockDep, caller: Caller
) -> KlipOut:
    """Change some fields of a klip (the result is checked as a whole klip against its source)."""
    return KlipOut.of(await work(service.update_klip, clock, caller, dashboard_id, klip_id, body))


@router.delete("/dashboards/{dashboard_id}/klips/{klip_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_klip(
    dashboard_id: PathId, klip_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller
) -> Response:
    """Remove a klip from the dashboard; the others keep their order."""
    await work(service.delete_klip, clock, caller, dashboard_id, klip_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put("/dashboards/{dashboard_id}/layout", response_model=list[KlipOut])
async def set_layout(
    dashboard_id: PathId, body: LayoutIn, work: WorkDep, clock: ClockDep, caller: Caller
) -> list[KlipOut]:
    """Order and size the dashboard's klips on its 12-column grid (every klip listed once)."""
    return [KlipOut.of(k) for k in await work(service.set_layout, clock, caller, dashboard_id, body)]


def _set_filters(
    db: Session, clock: Clock, caller: Principal, dashboard_id: int, body: FiltersIn
) -> DashboardOut:
    dashboard = service.set_filters(db, clock, caller, dashboard_id, body.filters)
    return service.dashboard_out(db, caller, dashboard)


@router.put("/dashboards/{dashboard_id}/filters", response_model=DashboardOut)
async def set_filters(
    dashboard_id: PathId, body: FiltersIn, work: WorkDep, clock: ClockDep, caller: Caller
) -> DashboardOut:
    """Replace the filters viewers choose on the dashboard (also settable with a PATCH)."""
    return await work(_set_filters, clock, caller, dashboard_id, body)


@router.post("/klips/preview", response_model=PreviewOut)
async def preview_klip(body: PreviewIn, request: Request, work: WorkDep, caller: Caller) -> PreviewOut:
    """Draw a klip without saving it: its query's first rows and its SVG."""
    cache = services(request).renderer.live
    return await work(service.preview, caller, body, cache=cache)

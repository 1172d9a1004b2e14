"""The partner's own dashboards in the console (/partner/dashboards): the dashboards of no client,
drawn from the partner's own data sources, each opened in the builder; a new one starts empty."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.clock import Clock
from tenantry.dashboards import service as dashboards_service
from tenantry.dashboards.schemas import DashboardCreate
from tenantry.owners import partner_owner
from tenantry.web.clients import can_write
from tenantry.web.pages import PageRoute, Visit, form_sender, page, to, visitor

router = APIRouter(prefix="/partner/dashboards", include_in_schema=False, route_class=PageRoute)


def _dashboards(db: Session, visit: Visit) -> tuple[SignedIn, dict[str, Any]]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    dashboards, total = dashboards_service.dashboards_of(db, principal, partner_owner(principal), 200, 0)
    return signed_in, {"dashboards": dashboards, "total": total, "can_write": can_write(signed_in)}


@router.get("", response_class=HTMLResponse)
async def dashboards_page(request: Request, visit: Annotated[Visit, visitor()], work: WorkDep) -> Response:
    signed_in, context = await work(_dashboards, visit)
    return page(request, signed_in, "partner_dashboards.html", **context)


def _new(db: Session, visit: Visit, clock: Clock, name: str) -> int:
    principal = visit.partner_user(db).principal
    owner = partner_owner(principal)
    return dashboards_service.create_dashboard(db, clock, principal, owner, DashboardCreate(name=name)).id


@router.post("")
async def new_dashboard(
    visit: Annotated[Visit, form_sender(back_to="/partner/dashboards")],
    work: WorkDep,
    clock: ClockDep,
    name: Annotated[str, Form()] = "",
) -> Response:
    """A new, empty dashboard of the partner's own, opened in the builder."""
    dashboard_id = await work(_new, visit, clock, name)
    return to(f"/partner/dashboards/{dashboard_id}/builder")

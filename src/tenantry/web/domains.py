"""The partner's own domains (/partner/domains): the list with each one's state, adding one and
removing one. Every user of the partner sees them; admins change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PathId, WorkDep, services
from tenantry.auth.sessions import SignedIn
from tenantry.clock import Clock
from tenantry.db.domain_models import PartnerDomain
from tenantry.domains import service as domains_service
from tenantry.domains.api import changed
from tenantry.domains.names import operator_host
from tenantry.domains.schemas import DomainCreate
from tenantry.web.pages import PageRoute, Visit, Visitor, form_sender, page

router = APIRouter(prefix="/partner/domains", include_in_schema=False, route_class=PageRoute)

DomainsForm = Annotated[Visit, form_sender(back_to="/partner/domains")]


def _domains(db: Session, visit: Visit) -> tuple[SignedIn, list[PartnerDomain]]:
    signed_in = visit.console(db)
    return signed_in, list(domains_service.domains_of(db, signed_in.principal, 200, 0)[0])


@router.get("", response_class=HTMLResponse)
async def domains_page(request: Request, visit: Visitor, work: WorkDep) -> Response:
    signed_in, domains = await work(_domains, visit)
    return page(
        request,
        signed_in,
        "partner_domains.html",
        domains=domains,
        server=operator_host(services(request).settings.base_url),
        is_admin=signed_in.user.role == "admin",
    )


def _add(db: Session, visit: Visit, clock: Clock, base_url: str, hostname: str) -> str:
    principal = visit.console(db).principal
    domain = domains_service.add_domain(db, clock, principal, DomainCreate(hostname=hostname), base_url)
    return f"Domain {domain.hostname} added. Ask the operator to verify it once its DNS points here."


@router.post("")
async def add_domain(
    request: Request,
    visit: DomainsForm,
    work: WorkDep,
    clock: ClockDep,
    hostname: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    notice = await work(_add, visit, clock, services(request).settings.base_url, hostname)
    changed(request)
    return visit.done(notice)


def _remove(db: Session, visit: Visit, clock: Clock, domain_id: int) -> str:
    domains_service.remove_domain(db, clock, visit.console(db).principal, domain_id)
    return "Domain removed."


@router.post("/{domain_id}/remove")
async def remove_domain(
    domain_id: PathId, request: Request, visit: DomainsForm, work: WorkDep, clock: ClockDep
) -> Response:
    notice = await work(_remove, visit, clock, domain_id)
    changed(request)
    return visit.done(notice)

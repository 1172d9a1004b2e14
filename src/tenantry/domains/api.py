"""Domain endpoints (SPEC §16): a partner's host names, and the reverse proxy's certificate check.
Partner admins change them; every partner user reads them; a client key is refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import PlainTextResponse

from tenantry.api.deps import ClockDep, PageDep, PartnerCaller, PathId, SettingsDep, WorkDep
from tenantry.domains import service
from tenantry.domains.names import request_host
from tenantry.domains.schemas import DomainCreate, DomainList, DomainOut

router = APIRouter(prefix="/api/1/partner/domains", tags=["domains"])
internal_router = APIRouter(include_in_schema=False)


def changed(request: Request) -> None:
    """This process serves the change at once; the others within `TENANTRY_DOMAIN_CACHE_SECONDS`."""
    request.app.state.hosts.invalidate()


@router.post("", status_code=status.HTTP_201_CREATED, response_model=DomainOut)
async def add_domain(
    body: DomainCreate,
    request: Request,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    settings: SettingsDep,
) -> DomainOut:
    """Add a host name of the partner's; it serves the partner once the operator has verified it."""
    domain = await work(service.add_domain, clock, caller, body, settings.base_url)
    changed(request)
    return DomainOut.of(domain)


@router.get("", response_model=DomainList)
async def list_domains(work: WorkDep, caller: PartnerCaller, page: PageDep) -> DomainList:
    """The partner's domains, oldest first, with whether each is verified."""
    items, total = await work(service.domains_of, caller, page.limit, page.offset)
    return DomainList(
        items=[DomainOut.of(d) for d in items], total=total, limit=page.limit, offset=page.offset
    )


@router.delete("/{domain_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_domain(
    domain_id: PathId, request: Request, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> Response:
    """Remove a domain; it stops serving the partner within seconds."""
    await work(service.remove_domain, clock, caller, domain_id)
    changed(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal_router.get("/internal/tls-ask")
async def tls_ask(request: Request, domain: Annotated[str, Query(max_length=300)] = "") -> Response:
    """200 when `domain` is a verified domain, else 404: a reverse proxy asks before it obtains a
    certificate on demand (Caddy's `on_demand_tls { ask ... }`), so no one can make it request
    certificates for names that are not ours. No authentication: it tells only what DNS tells."""
    partner_id = await request.app.state.hosts.partner_of(request_host(domain))
    if partner_id is None:
        return PlainTextResponse("not a verified domain\n", status_code=404)
    return PlainTextResponse("ok\n")

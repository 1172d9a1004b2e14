"""Published-link endpoints (SPEC §9). Each authenticates, calls one use case, returns a schema."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from tenantry.api.deps import Caller, ClockDep, PageDep, PathId, WorkDep
from tenantry.domains import partner_base_url
from tenantry.links import service
from tenantry.links.schemas import LinkCreate, LinkList, LinkOut

router = APIRouter(prefix="/api/1", tags=["published links"])


def _base_url(request: Request) -> str:
    return str(request.app.state.services.settings.base_url)


@router.post(
    "/dashboards/{dashboard_id}/published-links", status_code=status.HTTP_201_CREATED, response_model=LinkOut
)
async def create_link(
    dashboard_id: PathId, body: LinkCreate, request: Request, work: WorkDep, clock: ClockDep, caller: Caller
) -> LinkOut:
    """Publish the dashboard at a secret URL, shown only in this answer (Trial and Active only)."""
    link, token = await work(service.create_link, clock, caller, dashboard_id, body)
    # The URL is on the partner's own domain when it has a verified one.
    settings = request.app.state.services.settings
    return LinkOut.of(link, await work(partner_base_url, settings, caller.partner_id), token)


@router.get("/dashboards/{dashboard_id}/published-links", response_model=LinkList)
async def list_links(
    dashboard_id: PathId, request: Request, work: WorkDep, caller: Caller, page: PageDep
) -> LinkList:
    """The dashboard's published links, revoked ones included, oldest first (not for members)."""
    items, total = await work(service.links_of, caller, dashboard_id, page.limit, page.offset)
    base_url = _base_url(request)
    return LinkList(
        items=[LinkOut.of(link, base_url) for link in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.delete("/published-links/{link_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_link(link_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller) -> Response:
    """Revoke a published link for good; it no longer counts against the allocation."""
    await work(service.revoke_link, clock, caller, link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

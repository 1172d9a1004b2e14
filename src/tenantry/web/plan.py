"""The partner's plan (/partner/plan): each resource's pool, what the partner uses itself and what
its clients are allocated."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.db.models import Partner
from tenantry.partners import repository as partners_repo
from tenantry.web.pages import PageRoute, Visit, Visitor, page

router = APIRouter(include_in_schema=False, route_class=PageRoute)

RESOURCE_WORDS = {
    "dashboards": "Dashboards",
    "users": "Users",
    "published_links": "Published links",
    "api_calls_per_day": "API calls per day",
}


def pool_lines(partner: Partner) -> list[dict[str, Any]]:
    """The plan's pool a line per resource, with the shares of the bar it is drawn as."""
    lines = []
    for resource, line in partners_repo.pool_lines(partner).items():
        total = line.total
        scale = max(total, line.used_by_partner + line.allocated, 1)
        lines.append(
            {
                "resource": resource,
                "words": RESOURCE_WORDS[resource],
                "unlimited": line.unlimited,
                "total": total,
                "yours": line.used_by_partner,
                "allocated": line.allocated,
                "remaining": line.remaining,
                "yours_pct": round(100 * line.used_by_partner / scale, 1),
                "allocated_pct": round(100 * line.allocated / scale, 1),
            }
        )
    return lines


def _plan(db: Session, visit: Visit) -> tuple[SignedIn, Partner, list[dict[str, Any]]]:
    signed_in = visit.console(db)
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    return signed_in, partner, pool_lines(partner)


@router.get("/partner/plan", response_class=HTMLResponse)
async def plan(request: Request, visit: Visitor, work: WorkDep) -> Response:
    signed_in, partner, pool = await work(_plan, visit)
    return page(request, signed_in, "partner_plan.html", partner=partner, pool=pool)

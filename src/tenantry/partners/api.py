"""The partner's own endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tenantry.api.deps import ClockDep, DbSession, PartnerCaller
from tenantry.partners import repository as partners_repo
from tenantry.partners import service
from tenantry.partners.schemas import PartnerUpdate

router = APIRouter(prefix="/api/1/partner", tags=["partner"])


@router.get("")
def get_partner(db: DbSession, caller: PartnerCaller) -> dict[str, Any]:
    """The partner, its plan, and the pool: per resource total, used_by_partner, allocated, remaining."""
    return service.partner_view(partners_repo.get_partner(db, caller.partner_id))


@router.patch("")
def update_partner(
    body: PartnerUpdate, db: DbSession, clock: ClockDep, caller: PartnerCaller
) -> dict[str, Any]:
    """Change the partner's name, timezone, prices or currency (admins only)."""
    return service.partner_view(service.update_partner(db, clock, caller, body))

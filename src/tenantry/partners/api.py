"""The partner's own endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from tenantry.api.deps import DbSession, PartnerCaller
from tenantry.clients import repository as clients_repo
from tenantry.partners import service

router = APIRouter(prefix="/api/1/partner", tags=["partner"])


@router.get("")
def get_partner(db: DbSession, caller: PartnerCaller) -> dict[str, Any]:
    """The partner, its plan, and the pool: per resource total, used_by_partner, allocated, remaining."""
    return service.partner_view(clients_repo.get_partner(db, caller.partner_id))

"""The partner's own endpoints."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.orm import Session

from tenantry.accounts import service as accounts_service
from tenantry.api.deps import ClockDep, PartnerCaller, WorkDep
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.partners import repository as partners_repo
from tenantry.partners import service
from tenantry.partners.schemas import PartnerOut, PartnerUpdate

router = APIRouter(prefix="/api/1/partner", tags=["partner"])


def _read(db: Session, caller: Principal) -> PartnerOut:
    partner = partners_repo.get_partner(db, caller.partner_id)
    return PartnerOut.of(partner, accounts_service.require_mfa(db, caller))


def _update(db: Session, clock: Clock, caller: Principal, body: PartnerUpdate) -> PartnerOut:
    partner = service.update_partner(db, clock, caller, body)
    return PartnerOut.of(partner, accounts_service.require_mfa(db, caller))


@router.get("", response_model=PartnerOut)
async def get_partner(work: WorkDep, caller: PartnerCaller) -> PartnerOut:
    """The partner, its plan, and the pool: per resource total, used_by_partner, allocated, remaining."""
    return await work(_read, caller)


@router.patch("", response_model=PartnerOut)
async def update_partner(
    body: PartnerUpdate, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> PartnerOut:
    """Change the partner's name, timezone, prices, currency or `require_mfa` (admins only)."""
    return await work(_update, clock, caller, body)

"""Request and response bodies of the partner API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, model_validator

from tenantry.fields import Name, OneLine, Strict
from tenantry.partners import repository as partners_repo
from tenantry.pool import PoolLine

if TYPE_CHECKING:
    from tenantry.db.models import Partner

# The plan's bounds, the same wherever a plan is set (`tenantry partner create`, PartnerPlan) and
# read (the API): a price fits its NUMERIC(12, 2) column, a pool total its 32-bit column (and is
# bounded as a client's allocation is, clients.schemas.Amount), and a trial length keeps every trial
# end, extended or not, a date that can be stored and shown.
PRICE_DIGITS, PRICE_PLACES = 12, 2
PRICE_MAX = Decimal(10) ** (PRICE_DIGITS - PRICE_PLACES) - Decimal(1).scaleb(-PRICE_PLACES)
POOL_TOTAL_MAX = 2_000_000_000
TRIAL_DAYS_MAX = 3650

Price = Annotated[
    Decimal, Field(ge=0, max_digits=PRICE_DIGITS, decimal_places=PRICE_PLACES, allow_inf_nan=False)
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
Timezone = Annotated[str, StringConstraints(min_length=1, max_length=64), OneLine]


class PartnerUpdate(Strict):
    name: Name | None = None
    timezone: Timezone | None = Field(default=None, description="An IANA name, e.g. Europe/Paris.")
    dashboard_price: Price | None = Field(default=None, description='Per dashboard-month, e.g. "10.00".')
    user_price: Price | None = Field(default=None, description='Per user-month, e.g. "5.00".')
    currency: Currency | None = Field(default=None, description="A three-letter code, e.g. USD.")
    require_mfa: bool | None = Field(
        default=None, description="Partner users must sign in with a TOTP code (from their next sign-in)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # Every field may be left out, but none can be cleared.
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise ValueError(f"{key} cannot be null; leave it out to keep it unchanged")
        return data


class PlanOut(BaseModel):
    dashboards: int
    users: int
    published_links: int
    api_calls_per_day: int
    trial_days: int
    trial_extension_days: int
    dashboard_price: str
    user_price: str
    currency: str


class PoolLineOut(BaseModel):
    """One resource of the pool; -1 stands for unlimited, as in the plan's totals."""

    total: int
    used_by_partner: int
    allocated: int
    remaining: int

    @classmethod
    def of(cls, line: PoolLine) -> PoolLineOut:
        return cls(**line.as_dict())


class PartnerOut(BaseModel):
    id: int
    name: str
    timezone: str
    created_at: datetime
    plan: PlanOut
    pool: dict[str, PoolLineOut]
    client_count: int
    require_mfa: bool = False

    @classmethod
    def of(cls, partner: Partner, require_mfa: bool = False) -> PartnerOut:
        """The partner, its plan, and the pool: per resource total, used_by_partner, allocated, remaining."""
        return cls(
            id=partner.id,
            name=partner.name,
            timezone=partner.timezone,
            created_at=partner.created_at,
            plan=PlanOut(
                dashboards=partner.plan_dashboards,
                users=partner.plan_users,
                published_links=partner.plan_published_links,
                api_calls_per_day=partner.plan_api_calls_per_day,
                trial_days=partner.trial_days,
                trial_extension_days=partner.trial_extension_days,
                dashboard_price=f"{partner.dashboard_price:.2f}",
                user_price=f"{partner.user_price:.2f}",
                currency=partner.currency,
            ),
            pool={r: PoolLineOut.of(line) for r, line in partners_repo.pool_lines(partner).items()},
            client_count=partner.client_count,
            require_mfa=require_mfa,
        )

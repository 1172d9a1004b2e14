"""Request and response bodies of the domains API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field, StrictStr, StringConstraints, field_validator

from tenantry.domains.names import BadHostname, normalised
from tenantry.fields import OneLine, Strict

if TYPE_CHECKING:
    from tenantry.db.domain_models import PartnerDomain


class DomainCreate(Strict):
    hostname: Annotated[
        StrictStr,
        StringConstraints(max_length=300),
        Field(
            description="A DNS name of the partner's, such as dashboards.example.com: lower-cased, "
            "without a trailing dot, internationalised names kept in their punycode form."
        ),
        OneLine,
    ]

    @field_validator("hostname")
    @classmethod
    def _a_host_name(cls, value: str) -> str:
        try:
            return normalised(value)
        except BadHostname as bad:
            raise ValueError(str(bad)) from None


class DomainOut(BaseModel):
    id: int
    hostname: str
    verified: bool = Field(description="True once the operator checked that the name points here.")
    verified_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, domain: PartnerDomain) -> DomainOut:
        return cls.model_validate(domain, from_attributes=True)


class DomainList(BaseModel):
    items: list[DomainOut]
    total: int
    limit: int
    offset: int

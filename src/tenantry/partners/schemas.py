"""Request bodies of the partner API. Unknown fields are refused (422)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from tenantry.fields import Name, OneLine

Price = Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
Timezone = Annotated[str, StringConstraints(min_length=1, max_length=64), OneLine]


class PartnerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    timezone: Timezone | None = Field(default=None, description="An IANA name, e.g. Europe/Paris.")
    dashboard_price: Price | None = Field(default=None, description='Per dashboard-month, e.g. "10.00".')
    user_price: Price | None = Field(default=None, description='Per user-month, e.g. "5.00".')
    currency: Currency | None = Field(default=None, description="A three-letter code, e.g. USD.")

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        # Every field may be left out, but none can be cleared.
        if isinstance(data, dict):
            for key, value in data.items():
                if value is None:
                    raise ValueError(f"{key} cannot be null; leave it out to keep it unchanged")
        return data

"""Request and response bodies of the clients API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tenantry.fields import Description, ExternalId, Name, Reason

# The database's integers are 64-bit. A larger number names no row and would overflow in the driver,
# so an id or count outside this range is refused as malformed (422) before anything runs.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
RowId = Annotated[StrictInt, Field(ge=INT64_MIN, le=INT64_MAX)]

Amount = Annotated[StrictInt, Field(ge=0, le=2_000_000_000)]
SettableStatus = Literal["setup", "trial", "active", "disabled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resources(Strict):
    dashboards: Amount | None = None
    users: Amount | None = None
    published_links: Amount | None = None
    api_calls_per_day: Amount | None = None

    def given(self) -> dict[str, int]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ClientCreate(Strict):
    name: Name
    description: Description = ""
    external_id: ExternalId | None = None
    status: Literal["setup", "trial", "active"] = "setup"
    resources: Resources | None = None
    reason: Reason = ""


class ClientUpdate(Strict):
    name: Name | None = None
    description: Description | None = None
    external_id: ExternalId | None = None
    status: SettableStatus | None = None
    resources: Resources | None = None
    reason: Reason = ""


class TrialOut(BaseModel):
    started_at: datetime
    ends_at: datetime
    days_remaining: int
    extended: bool
    extension_available: bool
    expired: bool


class ResourcesOut(BaseModel):
    dashboards: int
    users: int
    published_links: int
    api_calls_per_day: int


class UsageOut(BaseModel):
    dashboards: int
    users: int
    published_links: int
    api_calls_today: int


class ClientOut(BaseModel):
    id: int
    name: str
    description: str
    external_id: str | None
    status: str
    effective_status: str
    trial: TrialOut | None
    resources: ResourcesOut
    usage: UsageOut
    created_at: datetime
    last_sign_in: datetime | None


class ClientList(BaseModel):
    items: list[ClientOut]
    total: int
    limit: int
    offset: int


class ActivationCheck(BaseModel):
    ready: bool
    missing: list[str]


class StatusChangeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: int
    from_: str | None = Field(alias="from")
    to: str
    at: datetime
    actor: str
    reason: str


class StatusChangeList(BaseModel):
    items: list[StatusChangeOut]
    total: int
    limit: int
    offset: int

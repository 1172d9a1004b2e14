"""Request and response bodies for users, API keys and `/me`. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from tenantry.clients.schemas import Strict, TrialOut
from tenantry.fields import Email, Name

# How long a password may be; what it must be (auth.passwords) is checked where it is chosen, so a
# weak one is refused with `weak_password` and its reason, not as a malformed body.
Password = Annotated[str, StringConstraints(max_length=200)]


class ClientUserCreate(Strict):
    email: Email
    name: Name
    role: Literal["admin", "member"] = "member"
    password: Password | None = None


class PartnerUserCreate(Strict):
    email: Email
    name: Name
    role: Literal["admin", "editor", "viewer"] = "editor"
    password: Password | None = None


class InvitationOut(BaseModel):
    queued: bool  # the worker sends it shortly; false without SMTP settings (then see reason)
    delivered: bool
    reason: str | None


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    password_set: bool
    created_at: datetime
    last_sign_in: datetime | None


class UserCreated(UserOut):
    invitation: InvitationOut | None


class UserList(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class ApiKeyCreate(Strict):
    name: Name


class ApiKeyOut(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    total: int
    limit: int
    offset: int


class MeUser(BaseModel):
    id: int
    kind: Literal["partner_user", "client_user"]
    email: str
    name: str
    role: str
    partner_id: int


class MeClient(BaseModel):
    id: int
    name: str
    status: str
    effective_status: str
    trial: TrialOut | None


class MeOut(BaseModel):
    user: MeUser
    client: MeClient | None

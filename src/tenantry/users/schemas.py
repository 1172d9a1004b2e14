"""Request and response bodies for users, API keys and `/me`. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel

from tenantry import lifecycle
from tenantry.clients.schemas import TrialOut
from tenantry.fields import Email, Name, Password, Strict
from tenantry.policy import stored_status

if TYPE_CHECKING:
    from tenantry.db.models import ApiKey, ClientUser, PartnerUser
    from tenantry.emails.service import Queued


class ClientUserCreate(Strict):
    email: Email
    name: Name
    role: Literal["admin", "editor", "member"] = "member"
    password: Password | None = None


class PartnerUserCreate(Strict):
    email: Email
    name: Name
    role: Literal["admin", "editor", "viewer"] = "editor"
    password: Password | None = None


class ClientUserUpdate(Strict):
    name: Name | None = None
    role: Literal["admin", "editor", "member"] | None = None


class PartnerUserUpdate(Strict):
    name: Name | None = None
    role: Literal["admin", "editor", "viewer"] | None = None


class InvitationOut(BaseModel):
    queued: bool  # the worker sends it shortly; false without SMTP settings (then see reason)
    delivered: bool
    reason: str | None

    @classmethod
    def of(cls, sent: Queued) -> InvitationOut:
        return cls(queued=sent.queued, delivered=sent.delivered, reason=sent.reason)


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    password_set: bool
    created_at: datetime
    last_sign_in: datetime | None

    @classmethod
    def of(cls, user: ClientUser | PartnerUser) -> UserOut:
        return cls(**_user_fields(user))


def _user_fields(user: ClientUser | PartnerUser) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "password_set": user.password_hash is not None,
        "created_at": user.created_at,
        "last_sign_in": user.last_sign_in,
    }


class UserCreated(UserOut):
    invitation: InvitationOut | None

    @classmethod
    def created(cls, user: ClientUser | PartnerUser, sent: Queued | None) -> UserCreated:
        """A new user, with its invitation when one was sent (no password was given)."""
        invitation = None if sent is None else InvitationOut.of(sent)
        return cls(**_user_fields(user), invitation=invitation)


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

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(**_key_fields(key))


def _key_fields(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


class ApiKeyCreated(ApiKeyOut):
    secret: str

    @classmethod
    def created(cls, key: ApiKey, secret: str) -> ApiKeyCreated:
        """A new key, with its secret: shown in this answer only."""
        return cls(**_key_fields(key), secret=secret)


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


class OwnClientFields(lifecycle.ClientState, Protocol):
    """What `MeClient` is made of: a client's status and trial fields, its id and name."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class MeClient(BaseModel):
    id: int
    name: str
    status: str
    effective_status: str
    trial: TrialOut | None

    @classmethod
    def of(cls, client: OwnClientFields, now: datetime) -> MeClient:
        trial, status = lifecycle.trial_of(client), stored_status(client.status)
        return cls(
            id=client.id,
            name=client.name,
            status=client.status,
            effective_status=lifecycle.effective_status(status, trial, now).value,
            trial=TrialOut.of_trial(trial, status, now),
        )


class MeOut(BaseModel):
    user: MeUser
    client: MeClient | None

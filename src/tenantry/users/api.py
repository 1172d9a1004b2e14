"""Endpoints for client users, partner users, API keys and `/me` (SPEC §9)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request, Response, status

from tenantry.api.deps import (
    Caller,
    ClockDep,
    DbSession,
    MailerDep,
    Page,
    PageDep,
    PartnerCaller,
    PathId,
    SettingsDep,
    caller_of,
    services,
)
from tenantry.db.models import ClientUser, PartnerUser
from tenantry.emails.service import Queued
from tenantry.users import repository as repo
from tenantry.users import service
from tenantry.users.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ClientUserCreate,
    MeOut,
    PartnerUserCreate,
    UserCreated,
    UserList,
    UserOut,
)

router = APIRouter(prefix="/api/1", tags=["users"])


def _created(user: ClientUser | PartnerUser, sent: Queued | None) -> UserCreated:
    invitation = (
        None if sent is None else {"queued": sent.queued, "delivered": sent.delivered, "reason": sent.reason}
    )
    return UserCreated.model_validate({**service.user_view(user), "invitation": invitation})


def _user_list(users: Sequence[ClientUser] | Sequence[PartnerUser], total: int, page: Page) -> UserList:
    items = [UserOut.model_validate(service.user_view(u)) for u in users]
    return UserList(items=items, total=total, limit=page.limit, offset=page.offset)


def _inviter(mailer: MailerDep, settings: SettingsDep) -> service.Inviter:
    return service.Inviter(mailer, settings.base_url)


@router.get("/clients/{client_id}/users", response_model=UserList)
def list_client_users(client_id: PathId, db: DbSession, caller: Caller, page: PageDep) -> UserList:
    """The client's users, oldest first (partner users and the client's admins)."""
    items, total = service.client_users(db, caller, client_id, page.limit, page.offset)
    return _user_list(items, total, page)


@router.post("/clients/{client_id}/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
def add_client_user(
    client_id: PathId,
    body: ClientUserCreate,
    db: DbSession,
    clock: ClockDep,
    caller: Caller,
    mailer: MailerDep,
    settings: SettingsDep,
) -> UserCreated:
    """Add a user (Trial and Active only, within the allocation); without a password, invite by e-mail."""
    user, delivery = service.add_client_user(db, clock, _inviter(mailer, settings), caller, client_id, body)
    return _created(user, delivery)


@router.delete("/clients/{client_id}/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_client_user(
    client_id: PathId, user_id: PathId, db: DbSession, clock: ClockDep, caller: Caller
) -> Response:
    """Remove a user from the client (Trial and Active only)."""
    service.remove_client_user(db, clock, caller, client_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/clients/{client_id}/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
)
def create_client_user_key(
    client_id: PathId, user_id: PathId, body: ApiKeyCreate, db: DbSession, clock: ClockDep, caller: Caller
) -> ApiKeyCreated:
    """Create an API key for a client user (partner admins and editors); the secret is shown once."""
    key, secret = service.create_key_for_client_user(db, clock, caller, client_id, user_id, body.name)
    return ApiKeyCreated.model_validate(service.key_view(key, secret))


@router.get("/partner/users", response_model=UserList)
def list_partner_users(db: DbSession, caller: PartnerCaller, page: PageDep) -> UserList:
    """The partner's own users, oldest first."""
    items, total = repo.list_partner_users(db, caller.partner_id, page.limit, page.offset)
    return _user_list(items, total, page)


@router.post("/partner/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
def add_partner_user(
    body: PartnerUserCreate,
    db: DbSession,
    clock: ClockDep,
    caller: PartnerCaller,
    mailer: MailerDep,
    settings: SettingsDep,
) -> UserCreated:
    """Add a partner user (admins only; counts against the plan's users)."""
    user, delivery = service.add_partner_user(db, clock, _inviter(mailer, settings), caller, body)
    return _created(user, delivery)


@router.delete("/partner/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_partner_user(user_id: PathId, db: DbSession, clock: ClockDep, caller: PartnerCaller) -> Response:
    """Remove a partner user (admins only)."""
    service.remove_partner_user(db, clock, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
async def me(request: Request) -> dict[str, Any]:
    """Who is calling, and for a client user, the client with its status and trial clock."""
    svc, caller = services(request), caller_of(request)
    async with svc.reads.connection() as reads:
        return await service.read_me(reads, caller, svc.clock.now())


@router.get("/me/api-keys", response_model=ApiKeyList)
def list_own_keys(db: DbSession, caller: Caller, page: PageDep) -> ApiKeyList:
    """The caller's own API keys (prefix only; secrets are never shown again)."""
    items, total = repo.list_own_keys(db, caller, page.limit, page.offset)
    return ApiKeyList(
        items=[ApiKeyOut.model_validate(service.key_view(k)) for k in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/me/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_own_key(body: ApiKeyCreate, db: DbSession, clock: ClockDep, caller: Caller) -> ApiKeyCreated:
    """Create an API key for yourself; the secret is in this answer only."""
    key, secret = service.create_own_key(db, clock, caller, body.name)
    return ApiKeyCreated.model_validate(service.key_view(key, secret))


@router.delete("/me/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_own_key(key_id: PathId, db: DbSession, clock: ClockDep, caller: Caller) -> Response:
    """Revoke one of your API keys; it stops working at once."""
    service.revoke_own_key(db, clock, caller, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

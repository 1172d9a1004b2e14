"""Endpoints for client users, partner users, API keys and `/me` (SPEC §9)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response, status

from tenantry.api.deps import (
    Caller,
    ClockDep,
    MailerDep,
    Page,
    PageDep,
    PartnerCaller,
    PathId,
    SettingsDep,
    WorkDep,
    caller_of,
    read_with_key,
    services,
)
from tenantry.api.lean import JsonAnswer
from tenantry.db.models import ClientUser, PartnerUser
from tenantry.users import repository as repo
from tenantry.users import service
from tenantry.users.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ClientUserCreate,
    ClientUserUpdate,
    InvitationOut,
    MeOut,
    PartnerUserCreate,
    PartnerUserUpdate,
    UserCreated,
    UserList,
    UserOut,
)

router = APIRouter(prefix="/api/1", tags=["users"])


def _user_list(users: Sequence[ClientUser] | Sequence[PartnerUser], total: int, page: Page) -> UserList:
    return UserList(items=[UserOut.of(u) for u in users], total=total, limit=page.limit, offset=page.offset)


def _inviter(mailer: MailerDep, settings: SettingsDep) -> service.Inviter:
    return service.Inviter(mailer, settings.base_url)


@router.get("/clients/{client_id}/users", response_model=UserList)
async def list_client_users(client_id: PathId, work: WorkDep, caller: Caller, page: PageDep) -> UserList:
    """The client's users, oldest first (partner users and the client's admins)."""
    items, total = await work(service.client_users, caller, client_id, page.limit, page.offset)
    return _user_list(items, total, page)


@router.post("/clients/{client_id}/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
async def add_client_user(
    client_id: PathId,
    body: ClientUserCreate,
    work: WorkDep,
    clock: ClockDep,
    caller: Caller,
    mailer: MailerDep,
    settings: SettingsDep,
) -> UserCreated:
    """Add a user (Trial and Active only, within the allocation); without a password, invite by e-mail."""
    inviter = _inviter(mailer, settings)
    user, sent = await work(service.add_client_user, clock, inviter, caller, client_id, body)
    return UserCreated.created(user, sent)


@router.delete("/clients/{client_id}/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_client_user(
    client_id: PathId, user_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller
) -> Response:
    """Remove a user from the client (Trial and Active only)."""
    await work(service.remove_client_user, clock, caller, client_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/clients/{client_id}/users/{user_id}", response_model=UserOut)
async def update_client_user(
    client_id: PathId, user_id: PathId, body: ClientUserUpdate, work: WorkDep, clock: ClockDep, caller: Caller
) -> UserOut:
    """Rename a client user or change its role; the client's last admin stays one (409)."""
    return UserOut.of(await work(service.update_client_user, clock, caller, client_id, user_id, body))


@router.post("/clients/{client_id}/users/{user_id}/resend-invitation", response_model=InvitationOut)
async def resend_client_invitation(
    client_id: PathId,
    user_id: PathId,
    work: WorkDep,
    clock: ClockDep,
    caller: Caller,
    mailer: MailerDep,
    settings: SettingsDep,
) -> InvitationOut:
    """Send a new invitation to a user who has not set a password (the old link stops working);
    409 `invitation_accepted` otherwise."""
    inviter = _inviter(mailer, settings)
    return InvitationOut.of(
        await work(service.resend_client_invitation, clock, inviter, caller, client_id, user_id)
    )


@router.post(
    "/clients/{client_id}/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
)
async def create_client_user_key(
    client_id: PathId, user_id: PathId, body: ApiKeyCreate, work: WorkDep, clock: ClockDep, caller: Caller
) -> ApiKeyCreated:
    """Create an API key for a client user (partner admins and editors); the secret is shown once."""
    key, secret = await work(service.create_key_for_client_user, clock, caller, client_id, user_id, body.name)
    return ApiKeyCreated.created(key, secret)


@router.get("/partner/users", response_model=UserList)
async def list_partner_users(work: WorkDep, caller: PartnerCaller, page: PageDep) -> UserList:
    """The partner's own users, oldest first."""
    items, total = await work(service.partner_users, caller, page.limit, page.offset)
    return _user_list(items, total, page)


@router.post("/partner/users", status_code=status.HTTP_201_CREATED, response_model=UserCreated)
async def add_partner_user(
    body: PartnerUserCreate,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    mailer: MailerDep,
    settings: SettingsDep,
) -> UserCreated:
    """Add a partner user (admins only; counts against the plan's users)."""
    user, sent = await work(service.add_partner_user, clock, _inviter(mailer, settings), caller, body)
    return UserCreated.created(user, sent)


@router.patch("/partner/users/{user_id}", response_model=UserOut)
async def update_partner_user(
    user_id: PathId, body: PartnerUserUpdate, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> UserOut:
    """Rename a partner user or change its role (admins only); the last admin stays one (409)."""
    return UserOut.of(await work(service.update_partner_user, clock, caller, user_id, body))


@router.post("/partner/users/{user_id}/resend-invitation", response_model=InvitationOut)
async def resend_partner_invitation(
    user_id: PathId,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    mailer: MailerDep,
    settings: SettingsDep,
) -> InvitationOut:
    """Send a new invitation to a partner user who has not set a password (admins only)."""
    inviter = _inviter(mailer, settings)
    return InvitationOut.of(await work(service.resend_partner_invitation, clock, inviter, caller, user_id))


@router.delete("/partner/users/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_partner_user(
    user_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> Response:
    """Remove a partner user (admins only)."""
    await work(service.remove_partner_user, clock, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
async def me(request: Request) -> JsonAnswer:
    """Who is calling, and for a client user, the client with its status and trial clock."""
    svc, caller = services(request), caller_of(request)
    row = read_with_key(request, repo.ME_WITH_KEY)
    if row is not None:  # read in the API key's statement
        return JsonAnswer(service.me_read_with_key(row, caller, svc.clock.now()))
    async with svc.reads.connection() as reads:
        return JsonAnswer(await service.read_me(reads, caller, svc.clock.now()))


@router.get("/me/api-keys", response_model=ApiKeyList)
async def list_own_keys(work: WorkDep, caller: Caller, page: PageDep) -> ApiKeyList:
    """The caller's own API keys (prefix only; secrets are never shown again)."""
    items, total = await work(service.own_keys, caller, page.limit, page.offset)
    return ApiKeyList(
        items=[ApiKeyOut.of(k) for k in items], total=total, limit=page.limit, offset=page.offset
    )


@router.post("/me/api-keys", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_own_key(body: ApiKeyCreate, work: WorkDep, clock: ClockDep, caller: Caller) -> ApiKeyCreated:
    """Create an API key for yourself; the secret is in this answer only."""
    key, secret = await work(service.create_own_key, clock, caller, body.name)
    return ApiKeyCreated.created(key, secret)


@router.delete("/me/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_own_key(key_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller) -> Response:
    """Revoke one of your API keys; it stops working at once."""
    await work(service.revoke_own_key, clock, caller, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

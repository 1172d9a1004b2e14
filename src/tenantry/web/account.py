"""The partner user's account page (/partner) and the API keys of whoever is signed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.accounts import service as accounts_service
from tenantry.api.deps import ClockDep, PathId, WorkDep, services
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.clock import Clock
from tenantry.db.models import ApiKey, Partner, PartnerUser
from tenantry.partners import repository as partners_repo
from tenantry.users import repository as users_repo
from tenantry.users import service as users_service
from tenantry.users.schemas import ApiKeyCreate, PartnerUserUpdate
from tenantry.web.pages import FormSender, PageRoute, Redirect, Visit, Visitor, form_sender, home, page, to

router = APIRouter(include_in_schema=False, route_class=PageRoute)
PartnerForm = Annotated[Visit, form_sender(back_to="/partner")]


def own_keys(db: Session, signed_in: SignedIn) -> list[ApiKey]:
    """The signed-in user's own API keys, as the account page and the portal list them."""
    return list(users_repo.list_own_keys(db, signed_in.principal, 200, 0)[0])


def totp_is_on(db: Session, principal: Principal) -> bool:
    """Whether the user signs in with a TOTP code, as the account pages show it."""
    return accounts_service.totp_is_on(db, principal)


@dataclass(frozen=True)
class _Account:
    signed_in: SignedIn
    partner: Partner
    keys: list[ApiKey]
    totp_on: bool
    require_mfa: bool
    users: list[PartnerUser]


def _account(db: Session, visit: Visit) -> _Account:
    signed_in = visit.anyone(db)
    if signed_in is None or not signed_in.is_partner:
        raise Redirect("/login")
    principal = signed_in.principal
    partner = partners_repo.get_partner(db, principal.partner_id)
    users = (
        list(users_repo.list_partner_users(db, partner.id, 200, 0)[0]) if principal.role == "admin" else []
    )
    return _Account(
        signed_in,
        partner,
        own_keys(db, signed_in),
        totp_is_on(db, principal),
        accounts_service.require_mfa(db, principal),
        users,
    )


@router.get("/partner", response_class=HTMLResponse)
async def partner_home(request: Request, visit: Visitor, work: WorkDep) -> Response:
    """The partner user's account: who they are, their API keys, password and two-step sign-in,
    and for admins the partner's users. (The clients are listed at /partner/clients.)"""
    found = await work(_account, visit)
    return page(
        request,
        found.signed_in,
        "partner_home.html",
        partner=found.partner,
        keys=found.keys,
        totp_on=found.totp_on,
        require_mfa=found.require_mfa,
        partner_users=found.users,
    )


def _edit_partner_user(db: Session, visit: Visit, clock: Clock, user_id: int, name: str, role: str) -> str:
    principal = visit.console(db).principal
    data = PartnerUserUpdate(name=name or None, role=role or None)  # type: ignore[arg-type]
    user = users_service.update_partner_user(db, clock, principal, user_id, data)
    return f"{user.name} is saved ({user.role})."


@router.post("/partner/users/{user_id}/edit")
async def edit_partner_user(
    user_id: PathId,
    request: Request,
    visit: PartnerForm,
    work: WorkDep,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return visit.done(await work(_edit_partner_user, visit, clock, user_id, name, role))


def _resend(db: Session, visit: Visit, clock: Clock, inviter: users_service.Inviter, user_id: int) -> str:
    principal = visit.console(db).principal
    sent = users_service.resend_partner_invitation(db, clock, inviter, principal, user_id)
    if sent.queued:
        return "A new invitation is on its way; the earlier link no longer works."
    return f"A new invitation was written to the log ({sent.reason}); the earlier link no longer works."


@router.post("/partner/users/{user_id}/resend")
async def resend_partner_invitation(
    user_id: PathId, request: Request, visit: PartnerForm, work: WorkDep, clock: ClockDep
) -> Response:
    svc = services(request)
    inviter = users_service.Inviter(svc.mailer, svc.settings.base_url)
    return visit.done(await work(_resend, visit, clock, inviter, user_id))


def _create_key(db: Session, visit: Visit, clock: Clock, name: str) -> tuple[SignedIn, ApiKey, str]:
    signed_in = visit.own_account(db)
    key_name = ApiKeyCreate(name=name.strip() or "API key").name
    key, secret = users_service.create_own_key(db, clock, signed_in.principal, key_name)
    return signed_in, key, secret


@router.post("/account/api-keys", response_class=HTMLResponse)
async def create_key(
    request: Request,
    visit: FormSender,
    work: WorkDep,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    signed_in, key, secret = await work(_create_key, visit, clock, name)
    return page(
        request,
        signed_in,
        "message.html",
        201,
        heading="New API key",
        message=f"Your new key {key.name!r}. Copy it now: it is shown only this once.",
        secret=secret,
        link={"href": home(signed_in), "text": "Back"},
    )


def _revoke_key(db: Session, visit: Visit, clock: Clock, key_id: int) -> SignedIn:
    signed_in = visit.own_account(db)
    users_service.revoke_own_key(db, clock, signed_in.principal, key_id)
    return signed_in


@router.post("/account/api-keys/{key_id}/revoke")
async def revoke_key(key_id: PathId, visit: FormSender, work: WorkDep, clock: ClockDep) -> Response:
    return to(home(await work(_revoke_key, visit, clock, key_id)))

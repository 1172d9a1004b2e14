"""The partner user's account page (/partner) and the API keys of whoever is signed in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PathId, WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.clock import Clock
from tenantry.db.models import ApiKey, Partner
from tenantry.partners import repository as partners_repo
from tenantry.users import repository as users_repo
from tenantry.users import service as users_service
from tenantry.users.schemas import ApiKeyCreate
from tenantry.web.pages import FormSender, PageRoute, Redirect, Visit, Visitor, home, page, to

router = APIRouter(include_in_schema=False, route_class=PageRoute)


def own_keys(db: Session, signed_in: SignedIn) -> list[ApiKey]:
    """The signed-in user's own API keys, as the account page and the portal list them."""
    return list(users_repo.list_own_keys(db, signed_in.principal, 200, 0)[0])


def _account(db: Session, visit: Visit) -> tuple[SignedIn, Partner, list[ApiKey]]:
    signed_in = visit.anyone(db)
    if signed_in is None or not signed_in.is_partner:
        raise Redirect("/login")
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    return signed_in, partner, own_keys(db, signed_in)


@router.get("/partner", response_class=HTMLResponse)
async def partner_home(request: Request, visit: Visitor, work: WorkDep) -> Response:
    """The partner user's account: who they are, and their API keys. (The clients are listed at
    /partner/clients.)"""
    signed_in, partner, keys = await work(_account, visit)
    return page(request, signed_in, "partner_home.html", partner=partner, keys=keys)


def _create_key(db: Session, visit: Visit, clock: Clock, name: str) -> tuple[SignedIn, ApiKey, str]:
    signed_in = visit.signed_in_user(db)
    visit.still_allowed(signed_in)
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
    signed_in = visit.signed_in_user(db)
    users_service.revoke_own_key(db, clock, signed_in.principal, key_id)
    return signed_in


@router.post("/account/api-keys/{key_id}/revoke")
async def revoke_key(key_id: PathId, visit: FormSender, work: WorkDep, clock: ClockDep) -> Response:
    return to(home(await work(_revoke_key, visit, clock, key_id)))

"""Signing in and out: /, /login, /logout, the invitation's password page, and a partner user
entering a client ("sign in as") and leaving it.

Every form carries a CSRF token: the session's once signed in, before that a signed double-submit
cookie.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, WorkDep, services
from tenantry.auth import mfa, sessions, signin
from tenantry.auth.addresses import request_address
from tenantry.clock import Clock
from tenantry.domains import host_partner_id
from tenantry.fields import INT64_MAX, INT64_MIN
from tenantry.users import service as users_service
from tenantry.web.pages import (
    CsrfField,
    FormExpired,
    FormSender,
    PageRoute,
    Refused,
    Visit,
    Visitor,
    anonymous_csrf,
    anonymous_form_ok,
    form_sender,
    home,
    login_page,
    message,
    render,
    secret,
    secure,
    set_pending_cookie,
    to,
    token_form_refused,
    visitor,
)

router = APIRouter(include_in_schema=False, route_class=PageRoute)


@router.get("/")
async def root(visit: Visitor, work: WorkDep) -> Response:
    """The address people type: their console or portal when signed in, else the sign-in page."""
    signed_in = await work(visit.anyone) if visit.token is not None else None
    return to(home(signed_in) if signed_in is not None else "/login")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, visit: Visitor, work: WorkDep) -> Response:
    signed_in = await work(visit.anyone) if visit.token is not None else None
    if signed_in is not None:
        return to(home(signed_in))
    return login_page(request, None, 200)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    clock: ClockDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    """No request-wide unit of work here: the throttle takes short transactions of its own, and
    the password is checked outside all of them (see auth.signin)."""
    if not anonymous_form_ok(request, csrf_token):
        raise FormExpired()
    svc = services(request)
    address = request_address(request, svc.settings.trusted_proxy_networks)
    # On a partner's own domain, only that partner's users sign in (`host_partner_id`).
    outcome = await signin.sign_in(svc.database, clock, email, password, address, host_partner_id(request))
    if outcome.session_token is None and outcome.pending is None:
        shown = email if signin.may_name_an_account(email) else ""
        answer = login_page(request, outcome.message, outcome.status_code, shown)
        if outcome.retry_after is not None:
            answer.headers["Retry-After"] = outcome.retry_after
        return answer
    return signed_in(request, outcome, to("/partner" if outcome.is_partner else "/app"))


def signed_in(request: Request, outcome: signin.SignInOutcome, response: Response) -> Response:
    """The answer to a right password: the session's cookie on `response`, or, when a second step
    remains (a TOTP code, or setting TOTP up first), off to that step with its pending cookie."""
    if outcome.pending is not None:
        response = to("/login/code" if outcome.pending.purpose == "code" else "/login/enrol")
        set_pending_cookie(response, request, outcome.pending, int(mfa.PENDING_LIFETIME.total_seconds()))
        return response
    assert outcome.session_token is not None
    response.delete_cookie(mfa.PENDING_COOKIE)
    response.set_cookie(
        sessions.SESSION_COOKIE,
        sessions.sign(outcome.session_token, secret(request)),
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )
    return response


def _sign_out(db: Session, visit: Visit) -> None:
    if visit.anyone(db) is not None:
        signin.sign_out(db, visit.signed_in_user(db))


@router.post("/logout")
async def logout(visit: Visitor, work: WorkDep, csrf_token: CsrfField = "") -> Response:
    """Ends the session (a form without its token changes nothing); the cookie goes either way."""
    visit.csrf_token = csrf_token
    await work(_sign_out, visit)
    response = to("/login")
    response.delete_cookie(sessions.SESSION_COOKIE)
    return response


ClientId = Annotated[int, Form(ge=INT64_MIN, le=INT64_MAX)]


def _enter(db: Session, visit: Visit, clock: Clock, client_id: int, mode: signin.ActingMode) -> None:
    signin.enter_client(db, clock, visit.signed_in_user(db), client_id, mode)


@router.post("/partner/sign-in-as")
async def sign_in_as(
    visit: Annotated[Visit, form_sender(heading="Not allowed")],
    work: WorkDep,
    clock: ClockDep,
    client_id: ClientId,
    mode: Annotated[signin.ActingMode, Form()] = "admin",
) -> Response:
    await work(_enter, visit, clock, client_id, mode)
    return to("/app")


def _leave(db: Session, visit: Visit, clock: Clock) -> None:
    signin.leave_client(db, clock, visit.signed_in_user(db))


@router.post("/partner/return")
async def leave_client(visit: FormSender, work: WorkDep, clock: ClockDep) -> Response:
    await work(_leave, visit, clock)
    return to("/partner")


# Invitations: the invited user sets a password.


InvitationVisit = Annotated[Visit, visitor(refused=token_form_refused("invite.html"))]


def _invalid_invitation(request: Request) -> HTMLResponse:
    return message(
        request,
        "Invitation not valid",
        "This invitation link is not valid, was already used, or has expired.",
        404,
    )


@router.get("/invite/{token}", response_class=HTMLResponse)
async def invitation_form(request: Request, token: str, work: WorkDep, clock: ClockDep) -> Response:
    # On a partner's own domain only its invitations open (SPEC §16): others are not found.
    if not await work(users_service.invitation_is_open, clock, token, host_partner_id(request)):
        return _invalid_invitation(request)
    csrf, new = anonymous_csrf(request)
    return render(request, "invite.html", {"csrf_token": csrf, "token": token, "message": None}, new_csrf=new)


@router.post("/invite/{token}", response_class=HTMLResponse)
async def accept_invitation(
    request: Request,
    token: str,
    visit: InvitationVisit,
    work: WorkDep,
    clock: ClockDep,
    password: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=200)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    if not anonymous_form_ok(request, csrf_token):
        raise FormExpired()
    visit.csrf_token = csrf_token
    if password != confirm:
        raise Refused("The two passwords are not the same.", 422)
    if not await work(users_service.accept_invitation, clock, token, password, host_partner_id(request)):
        return _invalid_invitation(request)
    return message(
        request,
        "Password set",
        "Your password is set. You can now sign in.",
        200,
        link={"href": "/login", "text": "Sign in"},
    )

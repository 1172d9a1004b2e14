"""Recovering and guarding an account (SPEC §18): the forgotten-password form and the reset link's
page, the second step of signing in (a TOTP code, or setting TOTP up when the partner requires
it), and on the account pages: changing one's password, turning TOTP on and off, and the
partner's "require two-step sign-in" switch.
"""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from sqlalchemy.orm import Session

from tenantry.accounts import service as accounts
from tenantry.api.deps import ClockDep, Work, WorkDep, services
from tenantry.auth import mfa, signin
from tenantry.auth.addresses import request_address
from tenantry.auth.sessions import SignedIn
from tenantry.clock import Clock
from tenantry.domains import host_partner_id
from tenantry.web.pages import (
    CsrfField,
    FormExpired,
    FormSender,
    PageRoute,
    Refused,
    Visit,
    anonymous_csrf,
    anonymous_form_ok,
    back,
    home,
    message,
    page,
    render,
    secret,
    set_pending_cookie,
    to,
    token_form_refused,
    visitor,
)
from tenantry.web.signin import signed_in as signed_in_answer

router = APIRouter(include_in_schema=False, route_class=PageRoute)

Password = Annotated[str, Form(max_length=200)]
Code = Annotated[str, Form(max_length=64)]
SENT = (
    "If an account uses this e-mail address, a link to choose a new password is on its way. "
    "It works once, for 1 hour."
)


NO_QR = "This key is too long for a QR code: type it into your authenticator app instead."


def qr_svg(begun: accounts.TotpBegun) -> Markup:
    """The otpauth URI as an inline SVG QR code (drawn here: no request leaves the page). A QR
    code holds at most about 2,300 bytes, which a long address of many-byte characters overflows:
    then the URI with the account's name cut short is drawn, and if even that does not fit (a long
    product name), a sentence saying so takes the code's place: the key below it is typed in."""
    for uri in (begun.otpauth_uri, begun.short_uri):
        try:
            code = segno.make(uri, error="m")
        except segno.DataOverflowError:
            continue
        svg = code.svg_inline(scale=4, dark="#000", light="#fff")
        return Markup(
            svg.replace("<svg ", '<svg role="img" aria-label="QR code for your authenticator app" ', 1)
        )
    return Markup("<p>{}</p>").format(NO_QR)


def _address(request: Request) -> str:
    return request_address(request, services(request).settings.trusted_proxy_networks)


# Forgotten passwords


@router.get("/forgot", response_class=HTMLResponse)
async def forgot_form(request: Request) -> Response:
    csrf, new = anonymous_csrf(request)
    return render(request, "forgot.html", {"csrf_token": csrf, "message": None}, new_csrf=new)


@router.post("/forgot", response_class=HTMLResponse)
async def forgot(
    request: Request,
    clock: ClockDep,
    background: BackgroundTasks,
    email: Annotated[str, Form(max_length=254)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    """The same answer for every e-mail: the links are written after it is sent (accounts.service)."""
    if not anonymous_form_ok(request, csrf_token):
        raise FormExpired()
    svc = services(request)
    named = await accounts.request_reset(svc.database, clock, email, _address(request))
    sender = accounts.ResetSender(svc.mailer, svc.settings)
    background.add_task(Work(svc.database, write=True), accounts.send_reset_links, clock, sender, named)
    return message(
        request, "Check your e-mail", SENT, 200, link={"href": "/login", "text": "Back to sign-in"}
    )


ResetVisit = Annotated[Visit, visitor(refused=token_form_refused("reset.html"))]


def _invalid_reset(request: Request) -> HTMLResponse:
    text = (
        "This password reset link is not valid, was already used, or has expired. You can ask for a new one."
    )
    return message(
        request, "Link not valid", text, 404, link={"href": "/forgot", "text": "Ask for a new link"}
    )


@router.get("/reset/{token}", response_class=HTMLResponse)
async def reset_form(request: Request, token: str, work: WorkDep, clock: ClockDep) -> Response:
    # On a partner's own domain only its users' links open (SPEC §16): others are not found.
    if not await work(accounts.reset_is_open, clock, token, host_partner_id(request)):
        return _invalid_reset(request)
    csrf, new = anonymous_csrf(request)
    return render(request, "reset.html", {"csrf_token": csrf, "token": token, "message": None}, new_csrf=new)


@router.post("/reset/{token}", response_class=HTMLResponse)
async def reset(
    request: Request,
    token: str,
    visit: ResetVisit,
    work: WorkDep,
    clock: ClockDep,
    password: Password = "",
    confirm: Password = "",
    csrf_token: CsrfField = "",
) -> Response:
    if not anonymous_form_ok(request, csrf_token):
        raise FormExpired()
    visit.csrf_token = csrf_token
    if password != confirm:
        raise Refused("The two passwords are not the same.", 422)
    if not await work(accounts.reset_password, clock, token, password, host_partner_id(request)):
        return _invalid_reset(request)
    text = "Your new password is set, and you are signed out everywhere. Sign in with it now."
    return message(request, "Password changed", text, 200, link={"href": "/login", "text": "Sign in"})


# The second step of signing in


def _pending(request: Request, clock: Clock, purpose: mfa.Purpose) -> mfa.Pending | None:
    found = mfa.read_pending(request.cookies.get(mfa.PENDING_COOKIE), secret(request), clock.now())
    return found if found is not None and found.purpose == purpose else None


def _code_page(request: Request, text: str | None, status_code: int) -> HTMLResponse:
    csrf, new = anonymous_csrf(request)
    return render(
        request, "login_code.html", {"csrf_token": csrf, "message": text}, status_code, new_csrf=new
    )


@router.get("/login/code", response_class=HTMLResponse)
async def code_form(request: Request, clock: ClockDep) -> Response:
    if _pending(request, clock, "code") is None:
        return to("/login")
    return _code_page(request, None, 200)


async def _second_step(request: Request, clock: Clock, step: mfa.Pending, code: str) -> signin.SignInOutcome:
    svc = services(request)
    return await signin.second_factor(svc.database, clock, svc.vault, step, code, _address(request))


@router.post("/login/code", response_class=HTMLResponse)
async def code(request: Request, clock: ClockDep, code: Code = "", csrf_token: CsrfField = "") -> Response:
    """A TOTP or recovery code; a wrong one counts as a failed sign-in."""
    if not anonymous_form_ok(request, csrf_token):
        raise FormExpired()
    step = _pending(request, clock, "code")
    if step is None:
        return to("/login")
    outcome = await _second_step(request, clock, step, code)
    if outcome.session_token is None:
        answer = _code_page(request, outcome.message, outcome.status_code)
        if outcome.retry_after is not None:
            answer.headers["Retry-After"] = outcome.retry_after
        return answer
    return signed_in_answer(request, outcome, to("/partner" if step.kind == "partner_user" else "/app"))


def _enrolment(
    db: Session, clock: Clock, request: Request, step: mfa.Pending
) -> tuple[accounts.TotpBegun, mfa.Pending] | None:
    return accounts.enrolment(db, clock, services(request).vault, step)


def _enrol_page(
    request: Request,
    clock: Clock,
    enrolling: tuple[accounts.TotpBegun, mfa.Pending],
    text: str | None,
    status_code: int,
) -> HTMLResponse:
    """The set-up page, with the pending cookie signed again to name the secret it shows: only
    that one is shown again and confirms in this sign-in (accounts.service.enrolment)."""
    begun, step = enrolling
    csrf, new = anonymous_csrf(request)
    context = {"csrf_token": csrf, "message": text, "secret": begun.secret, "qr": qr_svg(begun)}
    answer = render(request, "login_enrol.html", context, status_code, new_csrf=new)
    # The sign-in keeps its deadline: naming the secret does not lengthen it.
    set_pending_cookie(answer, request, step, max(step.expires_at - int(clock.now().timestamp()), 1))
    return answer


@router.get("/login/enrol", response_class=HTMLResponse)
async def enrol_form(request: Request, clock: ClockDep) -> Response:
    """Set up TOTP before anything else: the partner requires it of its users."""
    step = _pending(request, clock, "enrol")
    if step is None:
        return to("/login")
    enrolling = await Work(services(request).database, write=True)(_enrolment, clock, request, step)
    if enrolling is None:
        return to("/login")
    return _enrol_page(request, clock, enrolling, None, 200)


@router.post("/login/enrol", response_class=HTMLResponse)
async def enrol(request: Request, clock: ClockDep, code: Code = "", csrf_token: CsrfField = "") -> Response:
    if not anonymous_form_ok(request, csrf_token):
        raise FormExpired()
    step = _pending(request, clock, "enrol")
    if step is None:
        return to("/login")
    outcome = await _second_step(request, clock, step, code)
    if outcome.session_token is None:
        enrolling = await Work(services(request).database, write=True)(_enrolment, clock, request, step)
        if enrolling is None:
            return to("/login")
        answer = _enrol_page(request, clock, enrolling, outcome.message, outcome.status_code)
        if outcome.retry_after is not None:
            answer.headers["Retry-After"] = outcome.retry_after
        return answer
    target = "/partner" if step.kind == "partner_user" else "/app"
    context = {"codes": outcome.recovery_codes, "next": target, "csrf_token": ""}
    return signed_in_answer(request, outcome, render(request, "recovery_codes.html", context))


# On the account pages


def _change_password_visit(db: Session, visit: Visit) -> SignedIn:
    return visit.own_account(db)


@router.post("/account/password")
async def change_password(
    request: Request,
    visit: FormSender,
    work: WorkDep,
    clock: ClockDep,
    current: Password = "",
    new: Password = "",
    confirm: Password = "",
) -> Response:
    signed_in = await work(_change_password_visit, visit)
    visit.back = home(signed_in)
    if new != confirm:
        raise Refused("The two new passwords are not the same.", 422)
    svc = services(request)
    await accounts.change_password(
        svc.database, clock, signed_in.principal, current, new, _address(request), visit.token
    )
    return back(request, home(signed_in), notice="Your password is changed; your other sessions are ended.")


def _begin(db: Session, visit: Visit, clock: Clock, request: Request) -> tuple[SignedIn, accounts.TotpBegun]:
    signed_in = _change_password_visit(db, visit)
    return signed_in, accounts.begin_totp(db, clock, services(request).vault, signed_in.principal)


@router.post("/account/mfa", response_class=HTMLResponse)
async def begin_totp(request: Request, visit: FormSender, work: WorkDep, clock: ClockDep) -> Response:
    signed_in, begun = await work(_begin, visit, clock, request)
    return page(request, signed_in, "mfa_setup.html", secret=begun.secret, qr=qr_svg(begun))


def _confirm(
    db: Session, visit: Visit, clock: Clock, request: Request, code: str
) -> tuple[SignedIn, list[str]]:
    signed_in = _change_password_visit(db, visit)
    visit.back = home(signed_in)
    return signed_in, accounts.confirm_totp(db, clock, services(request).vault, signed_in.principal, code)


@router.post("/account/mfa/confirm", response_class=HTMLResponse)
async def confirm_totp(
    request: Request, visit: FormSender, work: WorkDep, clock: ClockDep, code: Code = ""
) -> Response:
    signed_in, codes = await work(_confirm, visit, clock, request, code)
    return page(request, signed_in, "recovery_codes.html", codes=codes, next=home(signed_in))


@router.post("/account/mfa/disable")
async def turn_off_totp(
    request: Request, visit: FormSender, work: WorkDep, clock: ClockDep, code: Code = ""
) -> Response:
    signed_in = await work(_change_password_visit, visit)
    visit.back = home(signed_in)
    svc = services(request)
    await accounts.turn_off_totp(svc.database, clock, svc.vault, signed_in.principal, code, _address(request))
    return back(request, home(signed_in), notice="Two-step sign-in is off.")


def _require_mfa(db: Session, visit: Visit, clock: Clock, value: bool) -> None:
    signed_in = visit.console(db)
    visit.back = "/partner"
    accounts.set_require_mfa(db, clock, signed_in.principal, value)


@router.post("/partner/require-mfa")
async def require_mfa(
    request: Request,
    visit: FormSender,
    work: WorkDep,
    clock: ClockDep,
    require: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    value = require == "on"
    await work(_require_mfa, visit, clock, value)
    words = "must now use" if value else "no longer have to use"
    return back(request, "/partner", notice=f"Your users {words} two-step sign-in from their next sign-in.")

"""What every page module shares: templates and rendering, redirects and flash sentences, form
reading, who sent a request, and the refusals a page raises.

A page handler states who may see it with a dependency (`visitor` for a page, `form_sender` for a
form, which also checks the form's CSRF token). That dependency only reads the signed cookie; the
session itself is looked up by the page's one unit of work (`await work(fn, ...)`, which runs all
of a request's database work in one worker-thread call), through `Visit.signed_in_user`,
`Visit.partner_user`, `Visit.console` or `Visit.portal`. Those raise a `WebRefusal` when the
visitor may not go on, and every domain refusal (`TenantryError`) or malformed form field a page's
work raises becomes one too (`PageRoute`). One exception handler, `answer_refusal`, then answers
it as the page asked: the page with the refusal's sentence, back to the form's page with the
sentence shown there, or JSON for what a page polls; a visitor not signed in goes to the sign-in
page. The work raised, so nothing it did is kept.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tenantry.api.deps import ClockDep, Work, services
from tenantry.auth import mfa, sessions
from tenantry.auth import repository as auth_repo
from tenantry.auth.sessions import SignedIn
from tenantry.branding import Brand, brand_for, cached_brand
from tenantry.db.models import Client
from tenantry.domains import host_partner_id
from tenantry.errors import AccountSuspended, InvalidInput, TenantryError, TrialEnded
from tenantry.policy import EffectiveStatus
from tenantry.web.headers import csp_nonce

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

CsrfField = Annotated[str, Form()]
STATUS_WORDS = {
    EffectiveStatus.SETUP: "Setup",
    EffectiveStatus.TRIAL: "Trial",
    EffectiveStatus.TRIAL_EXPIRED: "Trial ended",
    EffectiveStatus.ACTIVE: "Active",
    EffectiveStatus.DISABLED: "Disabled",
}
# One message carried across a POST/redirect/GET: what happened, or why it was refused.
FLASH_COOKIE = "tenantry_flash"
VIEW_ONLY = "You entered this client in view-only mode: nothing can be changed."


# Rendering


def secret(request: Request) -> str:
    return services(request).settings.resolved_secret_key


def secure(request: Request) -> bool:
    return services(request).settings.base_url.startswith("https://")


def render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200, new_csrf: bool = False
) -> HTMLResponse:
    """A template as a page; `new_csrf` sets the signed cookie of a form shown before signing in."""
    context.setdefault("user", None)
    context.setdefault("acting", None)
    context.setdefault("brand", None)
    if context["brand"] is None:
        context["brand"] = page_brand(request)
    context["csp_nonce"] = csp_nonce(request)
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if new_csrf:
        response.set_cookie(
            sessions.CSRF_COOKIE,
            sessions.sign(context["csrf_token"], secret(request)),
            httponly=True,
            samesite="lax",
            secure=secure(request),
        )
    return response


def set_pending_cookie(response: Response, request: Request, step: mfa.Pending, max_age: int) -> None:
    """The pending sign-in (a second step still to come) on `response`, for `max_age` seconds."""
    response.set_cookie(
        mfa.PENDING_COOKIE,
        step.signed(secret(request)),
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=secure(request),
    )


def page_brand(request: Request) -> Brand:
    """The brand a page is shown in: the signed-in user's partner's (with their client's logo), else
    that of the partner whose domain the request came to, else the product's own."""
    visit = getattr(request.state, "visit", None)
    if isinstance(visit, Visit) and visit.brand is not None:
        return visit.brand
    partner_id = host_partner_id(request)
    database = services(request).database
    brand = cached_brand(database.engine, partner_id)
    if brand is None:
        # Not read in the last few seconds. A page route has read it already (`warm_host_brand`), so
        # only a page answered outside one gets here: one indexed read, on the event loop.
        with database.session() as db:
            brand = brand_for(db, partner_id)
    return brand


async def warm_host_brand(request: Request) -> None:
    """Read the brand of the partner whose domain a page request came to, on a worker thread, if
    this process has not read it in the last few seconds: `page_brand` (which runs while a template
    is rendered, on the event loop) then finds it in the cache, and the loop never waits on the
    database for it, even when the database is slow or away."""
    partner_id = host_partner_id(request)
    if partner_id is None:
        return
    database = services(request).database
    if cached_brand(database.engine, partner_id) is not None:
        return

    def read() -> None:
        with database.session() as db:
            brand_for(db, partner_id)

    await run_in_threadpool(read)


def page(
    request: Request, signed_in: SignedIn, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """A page for a signed-in user: their name, the form token, the "signed in as" banner, and the
    sentence the previous form left (shown once)."""
    acting = None
    client = signed_in.row.acting_client
    if client is not None:
        acting = {
            "client_name": client.name,
            "by": signed_in.user.name,
            "mode": signed_in.session.acting_mode,
        }
    shown = flash(request)
    response = render(
        request,
        name,
        {
            **context,
            "user": signed_in.user,
            "csrf_token": signed_in.csrf_token,
            "acting": acting,
            "is_partner_user": signed_in.is_partner,
            "flash": shown,
        },
        status_code,
    )
    if shown is not None:
        response.delete_cookie(FLASH_COOKIE)
    return response


def message(request: Request, heading: str, text: str, status_code: int, **context: Any) -> HTMLResponse:
    """A page with one sentence, for someone not signed in."""
    return render(
        request,
        "message.html",
        {"heading": heading, "message": text, "error": status_code >= 400, "csrf_token": "", **context},
        status_code,
    )


def to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def back(request: Request, path: str, *, error: str | None = None, notice: str | None = None) -> Response:
    """Redirect after a form (POST/redirect/GET), carrying its outcome to the next page."""
    response = to(path)
    if error or notice:
        kind, text = ("error", error) if error else ("notice", notice)
        value = base64.urlsafe_b64encode(json.dumps([kind, text]).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE,
            sessions.sign(value, secret(request)),
            max_age=120,
            httponly=True,
            samesite="lax",
            secure=secure(request),
        )
    return response


def flash(request: Request) -> dict[str, str] | None:
    value = sessions.unsign(request.cookies.get(FLASH_COOKIE), secret(request))
    if value is None:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        return None
    return {"kind": str(kind), "text": str(text)}


def home(signed_in: SignedIn) -> str:
    """Where a signed-in user starts: the partner console, or the portal of the client they see."""
    return "/app" if not signed_in.is_partner or signed_in.row.acting_client is not None else "/partner"


def login_page(request: Request, text: str | None, status_code: int, email: str = "") -> HTMLResponse:
    csrf, new = anonymous_csrf(request)
    context = {"csrf_token": csrf, "message": text, "email": email}
    return render(request, "login.html", context, status_code, new_csrf=new)


def anonymous_csrf(request: Request) -> tuple[str, bool]:
    """The pre-sign-in CSRF token from its signed cookie, or a new one (True: set the cookie)."""
    token = sessions.unsign(request.cookies.get(sessions.CSRF_COOKIE), secret(request))
    return (token, False) if token else (sessions.new_token(), True)


def anonymous_form_ok(request: Request, csrf_token: str) -> bool:
    """A form sent before signing in carries the token of its signed cookie (double submit)."""
    expected = sessions.unsign(request.cookies.get(sessions.CSRF_COOKIE), secret(request))
    return sessions.csrf_matches(expected, csrf_token)


# Form reading


def plain_invalid(invalid: ValidationError) -> str:
    """A malformed form field as a sentence: the field and what is wrong with it."""
    first = invalid.errors()[0]
    where = ".".join(str(part) for part in first["loc"] if not isinstance(part, int)) or "The form"
    return f"{where.replace('_', ' ').capitalize()}: {first['msg']}."


def ascii_number(text: str) -> int | None:
    """The whole number `text` spells in ASCII digits, else None (`str.isdigit` alone also takes
    "²", which `int` does not)."""
    return int(text) if text.isascii() and text.isdigit() else None


def amount(value: str) -> int | None:
    """A number field: empty means "not given"; anything else must be a whole number."""
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a whole number.") from None


def may_change(signed_in: SignedIn) -> bool:
    """Signed in as a client in view-only mode, every change is refused."""
    return not signed_in.session.view_only


# Refusals


class WebRefusal(Exception):
    """A page request that cannot go on; `answer_refusal` answers it."""

    async def answer(self, visit: Visit) -> Response:
        raise NotImplementedError


class Redirect(WebRefusal):
    """The visitor belongs elsewhere: the sign-in page, or the console or portal they may see."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path

    async def answer(self, visit: Visit) -> Response:
        if visit.json:
            return JSONResponse({"available": False}, status_code=401)
        return to(self.path)


class Refused(WebRefusal):
    """A refusal in a sentence: on the page (with `heading`, else the page's own), back on the
    form's page, or as JSON, as the page asked."""

    def __init__(self, sentence: str, status: int, heading: str | None = None) -> None:
        super().__init__(sentence)
        self.sentence, self.status, self.heading = sentence, status, heading

    async def answer(self, visit: Visit) -> Response:
        request = visit.request
        if visit.json:
            return JSONResponse({"available": False}, status_code=self.status)
        if visit.refused is not None:
            return visit.refused(visit, self)
        if visit.back is not None:
            return back(request, visit.back, error=self.sentence)
        heading = self.heading or visit.heading
        if heading == "Not found" and self.status == 422:  # bad input on a page that says "Not found"
            heading = "Not possible"
        if visit.signed_in is None:
            return message(request, heading, self.sentence, self.status)
        return page(
            request,
            visit.signed_in,
            "message.html",
            self.status,
            heading=heading,
            message=self.sentence,
            error=True,
        )


class FormExpired(WebRefusal):
    """A form without its CSRF token (or with another's)."""

    async def answer(self, visit: Visit) -> Response:
        text = "The form has expired; go back, reload the page and try again."
        return message(visit.request, "Form expired", text, 403)


class SessionEnded(WebRefusal):
    """A client user whose client may no longer be used: the session ends here and now."""

    def __init__(self, session_id: int, sentence: str, status: int) -> None:
        super().__init__(sentence)
        self.session_id, self.sentence, self.status = session_id, sentence, status

    async def answer(self, visit: Visit) -> Response:
        await Work(services(visit.request).database, write=True)(auth_repo.delete_session, self.session_id)
        response: Response
        if visit.json:
            response = JSONResponse({"available": False}, status_code=401)
        else:
            response = login_page(visit.request, self.sentence, self.status)
        response.delete_cookie(sessions.SESSION_COOKIE)
        return response


async def answer_refusal(request: Request, exc: Exception) -> Response:
    """The web's one exception handler: a refused page request, answered as its page asked."""
    assert isinstance(exc, WebRefusal)
    visit = getattr(request.state, "visit", None)
    return await exc.answer(visit if isinstance(visit, Visit) else Visit(request, None, datetime.min))


class PageRoute(APIRoute):
    """A page's route: what its work refuses (a `TenantryError`, or a form field its schema turns
    down) is raised again as a `Refused`, so the page answers it instead of the API's problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            await warm_host_brand(request)
            try:
                return await handle(request)
            except TenantryError as refusal:
                raise Refused(refusal.detail, refusal.status) from refusal
            except ValidationError as invalid:
                raise Refused(plain_invalid(invalid), 422) from invalid

        return page_handler


# Who sent a request


RefusedPage = Callable[["Visit", Refused], Response]


@dataclass
class Visit:
    """One page request: the session its cookie names, and how its refusals are answered.

    The session is looked up in the request's unit of work (`signed_in`, `console`, `portal`),
    which remembers who it was, so a refusal raised later is shown on a page with their name.
    """

    request: Request
    token: str | None
    now: datetime
    csrf_token: str | None = None  # a form's field; None for a page
    heading: str = "Not possible"
    back: str | None = None  # a form's page: a refusal goes back there, said in a sentence
    json: bool = False  # polled by a page: refusals are `{"available": false}`
    refused: RefusedPage | None = None  # a page of its own for a refusal
    signed_in: SignedIn | None = field(default=None, init=False)
    # The signed-in user's brand, read in the same unit of work as their session.
    brand: Brand | None = field(default=None, init=False)

    def done(self, notice: str | None) -> Response:
        """A form's answer: back to its page, saying what happened."""
        assert self.back is not None, "a form_sender(back_to=...) form"
        return back(self.request, self.back, notice=notice)

    def anyone(self, db: Session) -> SignedIn | None:
        """Who is signed in, if anyone (a form's token is not checked)."""
        if self.token is not None and self.signed_in is None:
            self.signed_in = sessions.resolve(db, self.token, self.now, host_partner_id(self.request))
            if self.signed_in is not None:
                row = self.signed_in.row
                client = row.acting_client or row.client
                partner_id = self.signed_in.principal.partner_id
                self.brand = brand_for(db, partner_id, client.id if client is not None else None)
        return self.signed_in

    def signed_in_user(self, db: Session) -> SignedIn:
        """The signed-in user (and for a form, one that sent its own token), or off to sign in."""
        signed_in = self.anyone(db)
        if signed_in is None:
            raise Redirect("/login")
        if self.csrf_token is not None and not sessions.csrf_matches(signed_in.csrf_token, self.csrf_token):
            raise FormExpired()
        return signed_in

    def own_account(self, db: Session) -> SignedIn:
        """The signed-in user changing their own account (password, two-step sign-in, API keys):
        one still let in, and, signed in as a client in view-only mode, refused as the API
        refuses the same session's writes."""
        signed_in = self.signed_in_user(db)
        self.still_allowed(signed_in)
        if self.csrf_token is not None and not may_change(signed_in):
            raise Refused(VIEW_ONLY, 403, heading="View only")
        return signed_in

    def partner_user(self, db: Session) -> SignedIn:
        """A partner user, signed in as a client or not (a client user goes to the portal); for a
        form, one that may change things: signed in as a client in view-only mode, no console form
        changes anything either (as the API refuses the same session's writes)."""
        signed_in = self._partner(db)
        if self.csrf_token is not None and not may_change(signed_in):
            raise Refused(VIEW_ONLY, 403, heading="View only")
        return signed_in

    def _partner(self, db: Session) -> SignedIn:
        signed_in = self.signed_in_user(db)
        if not signed_in.is_partner:
            raise Redirect("/app")
        return signed_in

    def console(self, db: Session) -> SignedIn:
        """A partner user in the console (signed in as a client, they go to its portal)."""
        signed_in = self._partner(db)
        if signed_in.row.acting_client is not None:
            raise Redirect("/app")
        return signed_in

    def portal(self, db: Session) -> tuple[SignedIn, Client]:
        """The signed-in user and the client the portal shows, if its status still lets them in."""
        signed_in = self.signed_in_user(db)
        client = signed_in.row.acting_client or signed_in.row.client
        if client is None:
            raise Redirect("/partner")
        self.still_allowed(signed_in)
        return signed_in, client

    def still_allowed(self, signed_in: SignedIn) -> None:
        """A client user whose client's status no longer lets them in is signed out."""
        try:
            sessions.check_still_allowed(signed_in, self.now)
        except (AccountSuspended, TrialEnded) as ended:
            raise SessionEnded(signed_in.session.id, ended.detail, ended.status) from ended


def _cookie_token(request: Request) -> str | None:
    return sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE), secret(request))


def token_form_refused(template: str) -> RefusedPage:
    """The refusal of a password typed on a page reached by a one-time link (an invitation, a
    password reset): the same page again, with the rules' own sentence (too short, ...)."""

    def refused(visit: Visit, refusal: Refused) -> Response:
        context = {
            "csrf_token": visit.csrf_token,
            "token": visit.request.path_params["token"],
            "message": refusal.sentence,
        }
        return render(visit.request, template, context, 422)

    return refused


def visitor(*, heading: str = "Not possible", json: bool = False, refused: RefusedPage | None = None) -> Any:
    """Who asks for a page (read in the page's work); its refusals are shown under `heading`."""

    async def dependency(request: Request, clock: ClockDep) -> Visit:
        visit = Visit(
            request, _cookie_token(request), clock.now(), heading=heading, json=json, refused=refused
        )
        request.state.visit = visit
        return visit

    return Depends(dependency)


def form_sender(*, back_to: str | None = None, heading: str = "Not possible") -> Any:
    """Who sent a form, with its CSRF token (checked in the form's work). With `back_to` (a path
    whose `{names}` are the request's path parameters), a refused form goes back there."""

    async def dependency(request: Request, clock: ClockDep, csrf_token: CsrfField = "") -> Visit:
        path = back_to.format(**request.path_params) if back_to is not None else None
        visit = Visit(request, _cookie_token(request), clock.now(), csrf_token, heading=heading, back=path)
        request.state.visit = visit
        if visit.token is None:
            raise Redirect("/login")
        return visit

    return Depends(dependency)


Visitor = Annotated[Visit, visitor()]
FormSender = Annotated[Visit, form_sender()]

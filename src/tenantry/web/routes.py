"""The pages: /login, /logout, /invite/<token>, the partner home and the client portal.

Every form carries a CSRF token: the session's once signed in, before that a signed double-submit
cookie. Errors are shown on the page, never as JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.api.deps import ClockDep, DbSession, PathId, services
from tenantry.auth import repository as auth_repo
from tenantry.auth import sessions, signin
from tenantry.auth.addresses import request_address
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.clients import repository as clients_repo
from tenantry.clients import service as clients_service
from tenantry.clients.schemas import INT64_MAX, INT64_MIN
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards.live import POLL_SECONDS, live_view, watermark_for
from tenantry.db.models import ApiKey, Client
from tenantry.errors import AccountSuspended, NotFound, TenantryError, TrialEnded, WeakPassword
from tenantry.exports import service as exports_service
from tenantry.links import repository as links_repo
from tenantry.partners import repository as partners_repo
from tenantry.policy import EffectiveStatus
from tenantry.users import repository as users_repo
from tenantry.users import service as users_service
from tenantry.users.schemas import ApiKeyCreate
from tenantry.web.headers import csp_nonce

router = APIRouter(include_in_schema=False)
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


def _secret(request: Request) -> str:
    return services(request).settings.resolved_secret_key


def _secure(request: Request) -> bool:
    return services(request).settings.base_url.startswith("https://")


def _signed_in(request: Request, db: Session, clock: ClockDep) -> SignedIn | None:
    token = sessions.unsign(request.cookies.get(sessions.SESSION_COOKIE), _secret(request))
    return sessions.resolve(db, token, clock.now()) if token else None


def _anonymous_csrf(request: Request) -> tuple[str, bool]:
    """The pre-sign-in CSRF token from its signed cookie, or a new one (True: set the cookie)."""
    token = sessions.unsign(request.cookies.get(sessions.CSRF_COOKIE), _secret(request))
    return (token, False) if token else (sessions.new_token(), True)


def _anonymous_form_ok(request: Request, csrf_token: str) -> bool:
    """A form sent before signing in carries the token of its signed cookie (double submit)."""
    expected = sessions.unsign(request.cookies.get(sessions.CSRF_COOKIE), _secret(request))
    return sessions.csrf_matches(expected, csrf_token)


def _render(
    request: Request, name: str, context: dict[str, Any], status_code: int = 200, new_csrf: bool = False
) -> HTMLResponse:
    context.setdefault("user", None)
    context.setdefault("acting", None)
    context["csp_nonce"] = csp_nonce(request)
    response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if new_csrf:
        response.set_cookie(
            sessions.CSRF_COOKIE,
            sessions.sign(context["csrf_token"], _secret(request)),
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    return response


def _back(request: Request, path: str, *, error: str | None = None, notice: str | None = None) -> Response:
    """Redirect after a form (POST/redirect/GET), carrying its outcome to the next page."""
    response = _to(path)
    if error or notice:
        kind, text = ("error", error) if error else ("notice", notice)
        value = base64.urlsafe_b64encode(json.dumps([kind, text]).encode()).decode()
        response.set_cookie(
            FLASH_COOKIE,
            sessions.sign(value, _secret(request)),
            max_age=120,
            httponly=True,
            samesite="lax",
            secure=_secure(request),
        )
    return response


def _flash(request: Request) -> dict[str, str] | None:
    value = sessions.unsign(request.cookies.get(FLASH_COOKIE), _secret(request))
    if value is None:
        return None
    try:
        kind, text = json.loads(base64.urlsafe_b64decode(value.encode()))
    except ValueError:
        return None
    return {"kind": str(kind), "text": str(text)}


def plain_invalid(invalid: ValidationError) -> str:
    """A malformed form field as a sentence: the field and what is wrong with it."""
    first = invalid.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if not isinstance(part, int)) or "The form"
    return f"{field.replace('_', ' ').capitalize()}: {first['msg']}."


def _act(request: Request, db: Session, back: str, action: Callable[[], str | None]) -> Response:
    """Run one form's use case; a refusal rolls everything back and comes back as its sentence."""
    try:
        notice = action()
    except TenantryError as refusal:
        db.rollback()
        return _back(request, back, error=refusal.detail)
    except ValidationError as invalid:
        db.rollback()
        return _back(request, back, error=plain_invalid(invalid))
    return _back(request, back, notice=notice)


def _page(
    request: Request, signed_in: SignedIn, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    acting = None
    client = signed_in.row.acting_client
    if client is not None:
        acting = {
            "client_name": client.name,
            "by": signed_in.user.name,
            "mode": signed_in.session.acting_mode,
        }
    flash = _flash(request)
    response = _render(
        request,
        name,
        {
            **context,
            "user": signed_in.user,
            "csrf_token": signed_in.csrf_token,
            "acting": acting,
            "is_partner_user": signed_in.is_partner,
            "flash": flash,
        },
        status_code,
    )
    if flash is not None:
        response.delete_cookie(FLASH_COOKIE)
    return response


def _message(request: Request, heading: str, message: str, status_code: int, **context: Any) -> HTMLResponse:
    return _render(
        request,
        "message.html",
        {"heading": heading, "message": message, "error": status_code >= 400, "csrf_token": "", **context},
        status_code,
    )


def _refusal(
    request: Request, signed_in: SignedIn, heading: str, detail: str, status_code: int
) -> HTMLResponse:
    return _page(request, signed_in, "message.html", status_code, heading=heading, message=detail, error=True)


def _form_sender(request: Request, db: Session, clock: ClockDep, csrf_token: str) -> SignedIn | Response:
    """Who sent a signed-in form, or the answer to give when no one (or a forged form) did."""
    signed_in = _signed_in(request, db, clock)
    if signed_in is None:
        return _to("/login")
    if not sessions.csrf_matches(signed_in.csrf_token, csrf_token):
        return _refused_csrf(request)
    return signed_in


def _refused_csrf(request: Request) -> HTMLResponse:
    return _message(
        request, "Form expired", "The form has expired; go back, reload the page and try again.", 403
    )


def _login_page(request: Request, message: str | None, status_code: int, email: str = "") -> HTMLResponse:
    csrf, new = _anonymous_csrf(request)
    page = {"csrf_token": csrf, "message": message, "email": email}
    return _render(request, "login.html", page, status_code, new_csrf=new)


def _to(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _home(signed_in: SignedIn) -> str:
    return "/app" if not signed_in.is_partner or signed_in.row.acting_client is not None else "/partner"


def _ended(
    request: Request, db: Session, signed_in: SignedIn, message: str, status_code: int
) -> HTMLResponse:
    """A client user whose client may no longer be used: the session ends here and now."""
    auth_repo.delete_session(db, signed_in.session.id)
    response = _login_page(request, message, status_code)
    response.delete_cookie(sessions.SESSION_COOKIE)
    return response


@router.get("/")
def root(request: Request, db: DbSession, clock: ClockDep) -> Response:
    """The address people type: their console or portal when signed in, else the sign-in page."""
    signed_in = _signed_in(request, db, clock)
    return _to(_home(signed_in) if signed_in is not None else "/login")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, db: DbSession, clock: ClockDep) -> Response:
    signed_in = _signed_in(request, db, clock)
    if signed_in is not None:
        return _to(_home(signed_in))
    return _login_page(request, None, 200)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    clock: ClockDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    """No request-wide session here: the throttle takes short transactions of its own, and the
    password is checked outside all of them (see auth.signin)."""
    if not _anonymous_form_ok(request, csrf_token):
        return _refused_csrf(request)
    svc = services(request)
    address = request_address(request, svc.settings.trusted_proxy_networks)
    outcome = await signin.sign_in(svc.database, svc.write_gate, clock, email, password, address)
    if outcome.session_token is None:
        shown = email if signin.may_name_an_account(email) else ""
        page = _login_page(request, outcome.message, outcome.status_code, shown)
        if outcome.retry_after is not None:
            page.headers["Retry-After"] = outcome.retry_after
        return page
    response = _to("/partner" if outcome.is_partner else "/app")
    response.set_cookie(
        sessions.SESSION_COOKIE,
        sessions.sign(outcome.session_token, _secret(request)),
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return response


@router.post("/logout")
def logout(request: Request, db: DbSession, clock: ClockDep, csrf_token: CsrfField = "") -> Response:
    signed_in = _signed_in(request, db, clock)
    if signed_in is not None:
        if not sessions.csrf_matches(signed_in.csrf_token, csrf_token):
            return _refused_csrf(request)
        signin.sign_out(db, signed_in)
    response = _to("/login")
    response.delete_cookie(sessions.SESSION_COOKIE)
    return response


@router.get("/partner", response_class=HTMLResponse)
def partner_home(request: Request, db: DbSession, clock: ClockDep) -> Response:
    signed_in = _signed_in(request, db, clock)
    if signed_in is None or not signed_in.is_partner:
        return _to("/login")
    now = clock.now()
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    clients, _ = clients_repo.list_clients(
        db, partner, now=now, status=None, external_id=None, q=None, limit=200, offset=0
    )
    rows = []
    for client in clients:
        status = lifecycle.client_status(client, now)
        trial = lifecycle.trial_of(client)
        show_days = status in (EffectiveStatus.TRIAL, EffectiveStatus.TRIAL_EXPIRED) and trial is not None
        rows.append(
            {
                "id": client.id,
                "name": client.name,
                "status_words": STATUS_WORDS[status],
                "days_remaining": trial.days_remaining(now) if show_days and trial else None,
            }
        )
    return _page(
        request,
        signed_in,
        "partner_home.html",
        partner=partner,
        clients=rows,
        can_enter=signed_in.user.role in ("admin", "editor"),
        keys=_own_keys(db, signed_in),
    )


@router.post("/partner/sign-in-as")
def sign_in_as(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    client_id: Annotated[int, Form(ge=INT64_MIN, le=INT64_MAX)],
    mode: Annotated[signin.ActingMode, Form()] = "admin",
    csrf_token: CsrfField = "",
) -> Response:
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    try:
        signin.enter_client(db, clock, signed_in, client_id, mode)
    except TenantryError as refusal:
        return _refusal(request, signed_in, "Not allowed", refusal.detail, refusal.status)
    return _to("/app")


@router.post("/partner/return")
def leave_client(request: Request, db: DbSession, clock: ClockDep, csrf_token: CsrfField = "") -> Response:
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    signin.leave_client(db, clock, signed_in)
    return _to("/partner")


def _portal(request: Request, db: Session, clock: ClockDep) -> tuple[SignedIn, Client] | Response:
    """The signed-in user and the client the portal shows, or where they must go instead."""
    signed_in = _signed_in(request, db, clock)
    if signed_in is None:
        return _to("/login")
    return _portal_client(request, db, clock, signed_in)


def _portal_client(
    request: Request, db: Session, clock: ClockDep, signed_in: SignedIn
) -> tuple[SignedIn, Client] | Response:
    """The client a signed-in user's portal shows, if its status still lets them in."""
    client = signed_in.row.acting_client or signed_in.row.client
    if client is None:
        return _to("/partner")
    try:
        sessions.check_still_allowed(signed_in, clock.now())
    except (AccountSuspended, TrialEnded) as refusal:
        return _ended(request, db, signed_in, refusal.detail, refusal.status)
    return signed_in, client


def _viewer(signed_in: SignedIn, client: Client) -> Principal:
    """Who looks at the portal's content: a partner user signed in as the client sees that client's
    content only, through the same scoping as a client user."""
    return replace(signed_in.principal, client_id=client.id)


@router.get("/app", response_class=HTMLResponse)
def client_home(request: Request, db: DbSession, clock: ClockDep) -> Response:
    portal = _portal(request, db, clock)
    if isinstance(portal, Response):
        return portal
    signed_in, client = portal
    now = clock.now()
    status = lifecycle.client_status(client, now)
    trial = lifecycle.trial_of(client)
    partner = partners_repo.get_partner(db, client.partner_id)
    dashboards = dashboards_repo.visible_dashboards(db, _viewer(signed_in, client))
    manage = _may_manage(signed_in)
    links = {d.id: list(links_repo.list_links(db, d.id, 200, 0)[0]) for d in dashboards} if manage else {}
    return _page(
        request,
        signed_in,
        "app_home.html",
        can_write=manage,
        users=list(users_repo.list_client_users(db, client.id, 200, 0)[0]) if manage else [],
        links=links,
        client=client,
        trial_days_left=trial.days_remaining(now) if status is EffectiveStatus.TRIAL and trial else None,
        can_extend=_may_change(signed_in)
        and signed_in.user.role == "admin"
        and trial is not None
        and status is EffectiveStatus.TRIAL
        and trial.extension_available(now),
        extension_days=partner.trial_extension_days,
        keys=None if signed_in.is_partner else _own_keys(db, signed_in),
        dashboards=dashboards,
    )


@router.get("/app/dashboards/{dashboard_id}", response_class=HTMLResponse)
def client_dashboard(dashboard_id: PathId, request: Request, db: DbSession, clock: ClockDep) -> Response:
    """The live dashboard, for the users it is shared with; it updates itself when data refreshes."""
    portal = _portal(request, db, clock)
    if isinstance(portal, Response):
        return portal
    signed_in, client = portal
    try:
        dashboard = dashboards_repo.get_dashboard(db, _viewer(signed_in, client), dashboard_id)
    except NotFound:
        return _page(request, signed_in, "message.html", 404, message="There is no such dashboard here.")
    version, html = live_view(
        db, dashboard, cache=services(request).renderer.live, watermark=watermark_for(client, clock.now())
    )
    return _page(
        request,
        signed_in,
        "app_dashboard.html",
        client=client,
        dashboard=dashboard,
        version=version,
        klips=html,
        poll_seconds=POLL_SECONDS,
        can_write=_may_change(signed_in),
    )


@router.get("/app/dashboards/{dashboard_id}/live")
def client_dashboard_live(
    dashboard_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    v: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """What the live page polls: the data version, and the new klips when it changed."""
    portal = _portal(request, db, clock)
    if isinstance(portal, Response):
        return JSONResponse({"available": False}, status_code=401)
    signed_in, client = portal
    try:
        dashboard = dashboards_repo.get_dashboard(db, _viewer(signed_in, client), dashboard_id)
    except NotFound:
        return JSONResponse({"available": False}, status_code=404)
    version, html = live_view(
        db,
        dashboard,
        known_version=v,
        cache=services(request).renderer.live,
        watermark=watermark_for(client, clock.now()),
    )
    body: dict[str, Any] = {"available": True, "version": version}
    if html is not None:
        body.update(title=dashboard.name, html=html)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def download(
    request: Request,
    db: Session,
    clock: ClockDep,
    signed_in: SignedIn,
    principal: Principal,
    dashboard_id: int,
    fmt: str,
) -> Response:
    """A dashboard's PDF or PNG for the browser; a refusal is a page with its sentence, not JSON."""
    try:
        export = exports_service.render_export(
            db, clock, principal, services(request).renderer, dashboard_id, fmt
        )
    except TenantryError as refusal:
        return _refusal(request, signed_in, "Download not possible", refusal.detail, refusal.status)
    return Response(
        export.data,
        media_type=export.content_type,
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


ExportFormat = Annotated[str, Query(pattern="^(pdf|png)$")]


@router.get("/app/dashboards/{dashboard_id}/download")
def client_download(
    dashboard_id: PathId, request: Request, db: DbSession, clock: ClockDep, format: ExportFormat = "pdf"
) -> Response:
    portal = _portal(request, db, clock)
    if isinstance(portal, Response):
        return portal
    signed_in, client = portal
    return download(request, db, clock, signed_in, _viewer(signed_in, client), dashboard_id, format)


def _may_change(signed_in: SignedIn) -> bool:
    """Signed in as a client in view-only mode, every change is refused."""
    return signed_in.session.acting_mode != "view_only"


def _may_manage(signed_in: SignedIn) -> bool:
    """Who sees the portal's user and link management: the client's admins, and partner admins
    and editors signed in as the client (the services decide again on every change)."""
    if not _may_change(signed_in):
        return False
    if signed_in.is_partner:
        return signed_in.user.role in ("admin", "editor")
    return signed_in.user.role == "admin"


@router.post("/app/extend-trial")
def extend_trial(request: Request, db: DbSession, clock: ClockDep, csrf_token: CsrfField = "") -> Response:
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    client = signed_in.row.acting_client or signed_in.row.client
    if client is None:
        return _to("/partner")
    if not _may_change(signed_in):
        detail = "You entered this client in view-only mode: nothing can be changed."
        return _refusal(request, signed_in, "View only", detail, 403)
    try:
        sessions.check_still_allowed(signed_in, clock.now())
        clients_service.extend_trial(db, clock, signed_in.principal, client.id)
    except (AccountSuspended, TrialEnded) as refusal:
        return _ended(request, db, signed_in, refusal.detail, refusal.status)
    except TenantryError as refusal:
        return _refusal(request, signed_in, "Not possible", refusal.detail, refusal.status)
    return _to("/app")


def _own_keys(db: Session, signed_in: SignedIn) -> list[ApiKey]:
    return list(users_repo.list_own_keys(db, signed_in.principal, 200, 0)[0])


@router.post("/account/api-keys", response_class=HTMLResponse)
def create_key(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    try:
        sessions.check_still_allowed(signed_in, clock.now())
    except (AccountSuspended, TrialEnded) as refusal:
        return _ended(request, db, signed_in, refusal.detail, refusal.status)
    try:
        key_name = ApiKeyCreate(name=name.strip() or "API key").name
    except ValidationError as invalid:
        return _refusal(request, signed_in, "Not possible", plain_invalid(invalid), 422)
    key, secret = users_service.create_own_key(db, clock, signed_in.principal, key_name)
    return _page(
        request,
        signed_in,
        "message.html",
        201,
        heading="New API key",
        message=f"Your new key {key.name!r}. Copy it now: it is shown only this once.",
        secret=secret,
        link={"href": _home(signed_in), "text": "Back"},
    )


@router.post("/account/api-keys/{key_id}/revoke")
def revoke_key(
    request: Request, key_id: PathId, db: DbSession, clock: ClockDep, csrf_token: CsrfField = ""
) -> Response:
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    try:
        users_service.revoke_own_key(db, clock, signed_in.principal, key_id)
    except TenantryError as refusal:
        return _refusal(request, signed_in, "Not possible", refusal.detail, refusal.status)
    return _to(_home(signed_in))


@router.get("/invite/{token}", response_class=HTMLResponse)
def invitation_form(request: Request, token: str, db: DbSession, clock: ClockDep) -> Response:
    if not users_service.invitation_is_open(db, clock, token):
        return _invalid_invitation(request)
    csrf, new = _anonymous_csrf(request)
    return _render(
        request, "invite.html", {"csrf_token": csrf, "token": token, "message": None}, new_csrf=new
    )


@router.post("/invite/{token}", response_class=HTMLResponse)
def accept_invitation(
    request: Request,
    token: str,
    db: DbSession,
    clock: ClockDep,
    password: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=200)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    if not _anonymous_form_ok(request, csrf_token):
        return _refused_csrf(request)
    if password != confirm:
        return _refused_password(request, csrf_token, token, "The two passwords are not the same.")
    try:
        accepted = users_service.accept_invitation(db, clock, token, password)
    except WeakPassword as weak:
        # The rules' own sentence (too short, too common...), on the page the password was typed in.
        return _refused_password(request, csrf_token, token, weak.detail)
    if not accepted:
        return _invalid_invitation(request)
    return _message(
        request,
        "Password set",
        "Your password is set. You can now sign in.",
        200,
        link={"href": "/login", "text": "Sign in"},
    )


def _refused_password(request: Request, csrf_token: str, token: str, problem: str) -> HTMLResponse:
    page = {"csrf_token": csrf_token, "token": token, "message": problem}
    return _render(request, "invite.html", page, 422)


def _invalid_invitation(request: Request) -> HTMLResponse:
    return _message(
        request,
        "Invitation not valid",
        "This invitation link is not valid, was already used, or has expired.",
        404,
    )

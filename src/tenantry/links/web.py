"""The public side of published links: `GET /published/{token}` and the endpoint its page polls.

Everything answered here carries `X-Robots-Tag: noindex`. A link that cannot be shown answers a
neutral "This dashboard is not available" page that says nothing else: not whose it is, not why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, DbSession
from tenantry.dashboards.live import current_version, draw_klips, fragment
from tenantry.links import service
from tenantry.links.service import LinkUnavailable, OpenLink

router = APIRouter(prefix="/published", include_in_schema=False)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "web" / "templates"),
    autoescape=select_autoescape(["html"]),
)
POLL_SECONDS = 15
HEADERS = {
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
    # The token is in the URL: keep it out of Referer headers sent to anything the page links to.
    "Referrer-Policy": "no-referrer",
}
UNAVAILABLE = "This dashboard is not available"


def _page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = TEMPLATES.get_template(f"published/{name}").render(**context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _unavailable(status: int) -> HTMLResponse:
    return _page("unavailable.html", status, message=UNAVAILABLE)


def _cookie_name(opened: OpenLink) -> str:
    return f"tenantry_link_{opened.link.id}"


def _secret(request: Request) -> str:
    return str(request.app.state.services.settings.resolved_secret_key)


def _open(db: Session, token: str, now_clock: ClockDep) -> OpenLink | HTMLResponse:
    try:
        return service.open_link(db, token, now_clock.now())
    except LinkUnavailable as refusal:
        return _unavailable(refusal.status)


@router.get("/{token}", response_class=HTMLResponse)
def view(token: str, request: Request, db: DbSession, clock: ClockDep) -> Response:
    """The live dashboard behind a published link (a password form first when it has one)."""
    opened = _open(db, token, clock)
    if isinstance(opened, HTMLResponse):
        return opened
    if not service.has_access(opened.link, _secret(request), request.cookies.get(_cookie_name(opened))):
        return _page("password.html", 401, error=None)
    service.touch(opened.link, clock.now())
    version, drawings = draw_klips(db, opened.dashboard)
    return _page(
        "dashboard.html",
        title=opened.dashboard.name,
        version=version,
        klips=Markup(fragment(drawings)),
        poll_seconds=POLL_SECONDS,
    )


@router.post("/{token}", response_class=HTMLResponse)
def unlock(
    token: str,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Check a protected link's password; wrong tries are throttled per link."""
    opened = _open(db, token, clock)
    if isinstance(opened, HTMLResponse):
        return opened
    if opened.link.password_hash is None:
        return RedirectResponse(request.url.path, status_code=303, headers=HEADERS)
    outcome = service.try_password(opened.link, password, clock.now())
    if outcome is None:
        return _page("password.html", 429, error="Too many wrong passwords. Try again in a few minutes.")
    if not outcome:
        return _page("password.html", 401, error="That password is not right.")
    response = RedirectResponse(request.url.path, status_code=303, headers=HEADERS)
    response.set_cookie(
        _cookie_name(opened),
        service.access_proof(opened.link, _secret(request)),
        path="/published/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/{token}/live")
def live(
    token: str,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    v: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """What the page polls: the data version, and the new klips when it changed."""
    opened = _open(db, token, clock)
    if isinstance(opened, HTMLResponse):
        return JSONResponse({"available": False}, status_code=opened.status_code, headers=HEADERS)
    if not service.has_access(opened.link, _secret(request), request.cookies.get(_cookie_name(opened))):
        return JSONResponse({"available": False}, status_code=401, headers=HEADERS)
    version = current_version(db, opened.dashboard)
    if version == v:
        return JSONResponse({"available": True, "version": version}, headers=HEADERS)
    version, drawings = draw_klips(db, opened.dashboard)
    return JSONResponse(
        {"available": True, "version": version, "title": opened.dashboard.name, "html": fragment(drawings)},
        headers=HEADERS,
    )

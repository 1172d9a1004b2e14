"""The public side of published links: `GET /published/{token}` and the endpoint its page polls.

Everything answered here carries `X-Robots-Tag: noindex`. A link that cannot be shown answers a
neutral "This dashboard is not available" page that says nothing else: not whose it is, not why.

These are the hottest pages of the product and anyone may ask for them, so their reads (the link
with its client's status, the dashboard's klips and data versions: two small prepared queries) run
on the event loop (`db.reads`), and the page of a version already drawn is served from memory;
only drawing a new version and recording the view (once a minute) go to a worker thread. The
client's status is still read on every request: disabling a client closes its links from the very
next one.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from tenantry.api.deps import Services
from tenantry.api.lean import hot_page
from tenantry.auth import throttle
from tenantry.auth.addresses import request_address
from tenantry.auth.secrets import verify_password
from tenantry.branding import Brand, brand_for, cached_brand, recolour
from tenantry.dashboards.live import (
    POLL_SECONDS,
    Chosen,
    choose,
    data_version,
    filter_bar,
    filter_choices,
    live_view,
    parse_filters,
    stored_filters,
    today_in,
)
from tenantry.domains import host_partner_id
from tenantry.errors import InvalidInput, LinkUnavailable
from tenantry.klips.spec import DashboardFilter
from tenantry.links import service
from tenantry.links.repository import PublicLink
from tenantry.web.headers import new_nonce

router = APIRouter(prefix="/published", include_in_schema=False)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "web" / "templates"),
    autoescape=select_autoescape(["html"]),
    auto_reload=False,
)
_COMMON = {
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "no-store",
    # The token is in the URL: keep it out of Referer headers sent to anything the page links to.
    "Referrer-Policy": "no-referrer",
}
JSON_HEADERS = {**_COMMON, "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"}
UNAVAILABLE = "This dashboard is not available"


def page_policy(nonce: str, allowed_origins: list[str] | None) -> str:
    """The page is self-contained: its inline script and style run by this response's nonce, and
    it polls only its own origin. Other sites may frame it (that is what a published link is
    for), unless the link names the ones that may: then they become its `frame-ancestors`."""
    policy = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'"
    )
    if allowed_origins is not None:
        policy += "; frame-ancestors " + (" ".join(allowed_origins) or "'none'")
    return policy


# A page's headers but its policy, encoded once: a page is served many times a second.
_COMMON_RAW = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in _COMMON.items()]
_HTML = (b"content-type", b"text/html; charset=utf-8")


class PageResponse(Response):
    """An HTML page with the common headers and its policy (`page_policy`): what
    `HTMLResponse(body, status, headers={**_COMMON, "Content-Security-Policy": policy})` is, in
    the same headers and order, without encoding the common ones again."""

    media_type = "text/html"

    def __init__(self, body: bytes, status: int, nonce: str, origins: list[str] | None) -> None:
        self.body, self.status_code, self.background = body, status, None
        self.raw_headers = [
            *_COMMON_RAW,
            (b"content-security-policy", page_policy(nonce, origins).encode("latin-1")),
            (b"content-length", str(len(body)).encode("latin-1")),
            _HTML,
        ]


def _page(name: str, status: int = 200, origins: list[str] | None = None, **context: Any) -> Response:
    nonce = new_nonce()
    html = TEMPLATES.get_template(f"published/{name}").render(csp_nonce=nonce, **context)
    return PageResponse(html.encode(), status, nonce, origins)


async def _brand(services: Services, link: PublicLink) -> Brand:
    """The link's partner's brand (with its client's logo): from this process's cache, which
    costs nothing, else read on a worker thread."""
    brand = cached_brand(services.database.engine, link.partner_id, link.client_id)
    if brand is None:

        def read() -> Brand:
            with services.database.session() as db:
                return brand_for(db, link.partner_id, link.client_id)

        brand = await run_in_threadpool(read)
    return brand


def _cookie_name(link_id: int) -> str:
    return f"tenantry_link_{link_id}"


def _has_access(services: Services, request: Request, link: PublicLink) -> bool:
    if link.password_hash is None:  # open to anyone: no cookie to read
        return True
    cookie = request.cookies.get(_cookie_name(link.id))
    return service.has_access(link, services.settings.resolved_secret_key, cookie)


def _unavailable_page(status: int) -> Response:
    return _page("unavailable.html", status, message=UNAVAILABLE)


def _unavailable_json(status: int) -> Response:
    return JSONResponse({"available": False}, status_code=status, headers=JSON_HEADERS)


async def _opened(request: Request, token: str, now: datetime) -> PublicLink | LinkUnavailable:
    """The link, its dashboard and klips (with their data versions), read on the event loop; the
    client's status is checked on every request. On a partner's own domain only that partner's
    links are served (`host_partner_id`); on the default address every link is."""
    services: Services = request.app.state.services
    reads = services.reads.together()  # with the views of the pages asked for at the same moment
    try:
        return await service.open_public_async(reads, token, now, host_partner_id(request))
    except LinkUnavailable as refusal:
        return refusal


async def _record_view(services: Services, link: PublicLink, now: datetime) -> None:
    """`last_accessed_at`, to the minute: a write on a worker thread, once a minute at most."""
    if service.needs_touch(link, now):

        def touch() -> None:
            with services.database.engine.begin() as db:
                service.touch(db, link, now)

        await run_in_threadpool(touch)


def _drawn(services: Services, link: PublicLink, chosen: Chosen, today: date) -> tuple[str, str]:
    """The dashboard's version and fragment, drawing what the caches lack (on a worker thread)."""
    with services.database.engine.connect() as db:
        version, html = live_view(
            db,
            link.dashboard,
            klips=link.klips,
            cache=services.renderer.live,
            filters=chosen.raw,
            today=today,
            timezone=chosen.timezone,
        )
    assert html is not None
    return version, html


def _choices(services: Services, link: PublicLink, filters: list[DashboardFilter]) -> dict[str, list[str]]:
    with services.database.engine.connect() as db:
        return filter_choices(db, filters, link.klips, services.renderer.live)


# Filter choices whose data versions a link keeps (past them, a version is worked out each time).
_VERSIONS_KEPT = 64


def _version(link: PublicLink, chosen: Chosen) -> str:
    """The dashboard's data version with these filter values, worked out once per link and values
    (`data_version` reads nothing of `chosen` but its key)."""
    key = chosen.key
    version = link.versions.get(key)
    if version is None:
        version = data_version(link.dashboard, link.klips, chosen=chosen)
        if len(link.versions) < _VERSIONS_KEPT:
            link.versions[key] = version
    return version


def _chosen(request: Request, link: PublicLink, now: datetime) -> tuple[Chosen, date]:
    """The viewer's filter values (`?f.<id>=`, else each filter's default), or InvalidInput."""
    timezone = link.dashboard.timezone
    today = today_in(timezone, now)
    if not link.dashboard.filters:  # nothing to choose: the address's values are ignored, as `choose` would
        return Chosen(timezone=timezone or "UTC"), today
    raw = parse_filters(request.query_params.multi_items())
    return choose(stored_filters(link.dashboard.filters), raw, today, timezone), today


async def view(request: Request) -> Response:
    """The live dashboard behind a published link (a password form first when it has one), with
    the viewer's filter values (`?f.<id>=`) and a bar to change them.

    The hottest page of the product, and anyone may ask for it: its reads run on the event loop,
    and when the page for this version of the data is cached (the usual case) nothing else runs
    but joining it with the view's nonce. It is a plain Starlette route (added below), not a
    FastAPI one: it takes nothing but the path's token, and FastAPI's per-request parameter
    solving cost about a fifth of the page's CPU. `RequestMiddleware` answers it itself
    (`hot_page`: the layers below it do nothing for a page), and its link is made once while
    its rows are the same (`links.repository`), with its data versions (`_version`).
    """
    token: str = request.path_params["token"]
    services: Services = request.app.state.services
    now = services.clock.now()
    link = await _opened(request, token, now)
    if isinstance(link, LinkUnavailable):
        return _unavailable_page(link.status)
    if not _has_access(services, request, link):
        return _page("password.html", 401, link.allowed_origins, error=None)
    try:
        chosen, today = _chosen(request, link, now)
    except InvalidInput as refusal:
        return _page("invalid.html", 422, link.allowed_origins, message=refusal.detail)
    # The version covers the filter values, so each choice of them is a page of its own.
    version = _version(link, chosen)
    brand = await _brand(services, link)
    nonce = new_nonce()
    pages = services.renderer.live.pages
    # A page is drawn in its brand: another brand (or a changed one) is another page.
    page = pages.cached(_page_key(version, brand), nonce)
    if page is None:
        version, html = await run_in_threadpool(_drawn, services, link, chosen, today)
        filters = stored_filters(link.dashboard.filters)
        choices = await run_in_threadpool(_choices, services, link, filters) if filters else {}
        bar = filter_bar(filters, chosen, choices)
        page = pages.page(
            _page_key(version, brand),
            nonce,
            lambda: TEMPLATES.get_template("published/dashboard.html").render(
                brand=brand,
                title=link.dashboard.name,
                version=version,
                # The drawings are cached unbranded; the page (cached per brand) takes its colour.
                klips=Markup(recolour(html, brand)),
                filters=bar,
                poll_seconds=POLL_SECONDS,
                csp_nonce=pages.slot,
            ),
        )
    await _record_view(services, link, now)
    return PageResponse(page, 200, nonce, link.allowed_origins)


router.add_route("/published/{token}", hot_page(view), methods=["GET"], include_in_schema=False)


def _page_key(version: str, brand: Brand) -> str:
    # The whole brand, not a hash of it: two brands can never share a page.
    return f"{version}|{brand.key}"


@router.post("/{token}", response_class=HTMLResponse)
async def unlock(
    token: str, request: Request, password: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """Check a protected link's password; wrong tries are throttled per link and address."""
    services: Services = request.app.state.services
    link = await run_in_threadpool(_protected_link, services, token, host_partner_id(request))
    if isinstance(link, LinkUnavailable):
        return _unavailable_page(link.status)
    # Back to the page as it was asked for, with its filter values (the same path: no open redirect).
    again = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if link.password_hash is None:
        return RedirectResponse(again, status_code=303, headers=_COMMON)
    address = request_address(request, services.settings.trusted_proxy_networks)
    right = await throttle.attempt(
        services.database,
        services.clock,
        service.password_limits(link.id, address),
        partial(verify_password, password, link.password_hash),
        service.conclude_password,
    )
    if isinstance(right, throttle.Refused):
        error = f"Too many wrong passwords. Try again in {right.minutes}."
        page = _page("password.html", 429, link.allowed_origins, error=error)
        page.headers["Retry-After"] = right.retry_after
        return page
    if not right:
        return _page("password.html", 401, link.allowed_origins, error="That password is not right.")
    response = RedirectResponse(again, status_code=303, headers=_COMMON)
    # A published page lives in other sites' frames, where browsers send only a `SameSite=None`
    # cookie (kept apart per embedding site: `Partitioned`), which they take over https only. The
    # proof opens nothing but this link's page to read: no request it rides on changes anything.
    https = request.url.scheme == "https"
    response.set_cookie(
        _cookie_name(link.id),
        service.access_proof(link, services.settings.resolved_secret_key),
        path="/published/",
        httponly=True,
        samesite="none" if https else "lax",
        secure=https,
    )
    if https:  # `set_cookie(partitioned=True)` needs Python 3.14
        name, value = response.raw_headers[-1]
        response.raw_headers[-1] = (name, value + b"; Partitioned")
    return response


def _protected_link(services: Services, token: str, partner_id: int | None) -> PublicLink | LinkUnavailable:
    """The link whose password is tried, read (status checked) in a short read of its own."""
    with services.database.engine.connect() as db:
        try:
            return service.open_public(db, token, services.clock.now(), partner_id)
        except LinkUnavailable as refusal:
            return refusal


@router.get("/{token}/live")
async def live(token: str, request: Request, v: Annotated[str, Query(max_length=64)] = "") -> Response:
    """What the page polls: the data version, and the new klips when it changed."""
    services: Services = request.app.state.services
    now = services.clock.now()
    link = await _opened(request, token, now)
    if isinstance(link, LinkUnavailable):
        return _unavailable_json(link.status)
    if not _has_access(services, request, link):
        return _unavailable_json(401)
    try:
        chosen, today = _chosen(request, link, now)
    except InvalidInput as refusal:
        return JSONResponse(refusal.to_problem(), status_code=422, headers=JSON_HEADERS)
    version = _version(link, chosen)
    body: dict[str, Any] = {"available": True, "version": version}
    if version != v:
        version, html = await run_in_threadpool(_drawn, services, link, chosen, today)
        html = recolour(html, await _brand(services, link))
        body.update(version=version, title=link.dashboard.name, html=html)
    return JSONResponse(body, headers=JSON_HEADERS)

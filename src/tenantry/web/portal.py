"""The client portal (/app): the client's home, its live dashboards and their downloads, and its
forms: e-mail a dashboard, extend the trial, and for the client's admin its users and published
links. The same use cases as the API and the partner console, seen from the client.

A partner user signed in as the client sees what a client user would; in view-only mode every
change is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.api.deps import ClockDep, PathId, WorkDep, services
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.branding import recolour
from tenantry.clients import properties
from tenantry.clients import service as clients_service
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards import service as dashboards_service
from tenantry.dashboards.live import (
    POLL_SECONDS,
    Chosen,
    choose,
    filter_choices,
    live_view,
    parse_filters,
    stored_filters,
    today_in,
    watermark_for,
)
from tenantry.dashboards.live import (
    filter_bar as bar_of,
)
from tenantry.dashboards.schemas import DashboardCreate
from tenantry.datasources import probe
from tenantry.datasources import repository as sources_repo
from tenantry.datasources import service as sources_service
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.schemas import DataSourceOut
from tenantry.db.models import Client, Dashboard
from tenantry.errors import TenantryError
from tenantry.exports import service as exports_service
from tenantry.exports.api import EmailIn
from tenantry.exports.service import ExportFile, Renderer
from tenantry.links import repository as links_repo
from tenantry.mail import Mailer
from tenantry.outbound import Guard
from tenantry.owners import client_owner
from tenantry.partners import repository as partners_repo
from tenantry.policy import EffectiveStatus
from tenantry.settings import Settings
from tenantry.users import repository as users_repo
from tenantry.users import service as users_service
from tenantry.vault import Vault
from tenantry.web import forms
from tenantry.web.account import own_keys, totp_is_on
from tenantry.web.pages import (
    VIEW_ONLY,
    PageRoute,
    Refused,
    Visit,
    Visitor,
    form_sender,
    may_change,
    page,
    to,
    visitor,
)
from tenantry.web.sources import (
    BLANK_ROWS,
    REFRESH_CHOICES,
    SourceFields,
    SourceFieldsDep,
    change_settings,
    connection_test,
)

T = TypeVar("T")

router = APIRouter(prefix="/app", include_in_schema=False, route_class=PageRoute)


def viewer(signed_in: SignedIn, client: Client) -> Principal:
    """Who looks at the portal's content: a partner user signed in as the client sees that client's
    content only, through the same scoping as a client user."""
    return replace(signed_in.principal, client_id=client.id)


def may_build(signed_in: SignedIn) -> bool:
    """Who sees the portal's builder: the client's admins and editors, and partner admins and
    editors signed in as the client in admin mode (the services decide again on every change)."""
    if not may_change(signed_in):
        return False
    return signed_in.user.role in ("admin", "editor")


def _may_manage(signed_in: SignedIn) -> bool:
    """Who sees the portal's user and link management: the client's admins, and partner admins
    and editors signed in as the client (the services decide again on every change)."""
    if not may_change(signed_in):
        return False
    if signed_in.is_partner:
        return signed_in.user.role in ("admin", "editor")
    return signed_in.user.role == "admin"


def _home(db: Session, visit: Visit) -> tuple[SignedIn, dict[str, Any]]:
    signed_in, client = visit.portal(db)
    now = visit.now
    status = lifecycle.client_status(client, now)
    trial = lifecycle.trial_of(client)
    partner = partners_repo.get_partner(db, client.partner_id)
    dashboards = dashboards_repo.visible_dashboards(db, viewer(signed_in, client))
    manage = _may_manage(signed_in)
    build = may_build(signed_in)
    principal = viewer(signed_in, client)
    sources = (
        list(sources_repo.list_sources(db, client_owner(db, principal, client.id), 200, 0)[0])
        if build
        else []
    )
    links = {d.id: list(links_repo.list_links(db, d.id, 200, 0)[0]) for d in dashboards} if manage else {}
    return signed_in, {
        "can_write": manage,
        "can_build": build,
        "sources": sources,
        "source_views": {s.id: DataSourceOut.of(s) for s in sources},
        "refresh_choices": REFRESH_CHOICES,
        "blank_rows": BLANK_ROWS,
        "properties": _properties(db, principal, client.id) if build else None,
        "users": list(users_repo.list_client_users(db, client.id, 200, 0)[0]) if manage else [],
        "links": links,
        "client": client,
        "trial_days_left": trial.days_remaining(now) if status is EffectiveStatus.TRIAL and trial else None,
        "can_extend": may_change(signed_in)
        and signed_in.user.role == "admin"
        and trial is not None
        and status is EffectiveStatus.TRIAL
        and trial.extension_available(now),
        "extension_days": partner.trial_extension_days,
        "keys": None if signed_in.is_partner else own_keys(db, signed_in),
        "totp_on": False if signed_in.is_partner else totp_is_on(db, signed_in.principal),
        "dashboards": dashboards,
    }


def _properties(db: Session, principal: Principal, client_id: int) -> dict[str, str] | None:
    """The client's properties, read-only, for those the service lets read them (else not shown)."""
    try:
        return properties.properties_of(db, principal, client_id)
    except TenantryError:
        return None


@router.get("", response_class=HTMLResponse)
async def client_home(request: Request, visit: Visitor, work: WorkDep) -> Response:
    signed_in, context = await work(_home, visit)
    return page(request, signed_in, "app_home.html", **context)


@dataclass(frozen=True)
class LiveDashboard:
    signed_in: SignedIn
    client: Client
    dashboard: Dashboard
    version: str
    klips: str | None
    chosen: Chosen
    filter_bar: list[dict[str, Any]]


def _live(
    db: Session, visit: Visit, dashboard_id: int, known_version: str | None = None, bar: bool = False
) -> LiveDashboard:
    """The dashboard with the viewer's filter values (`?f.<id>=`, else the defaults; a value that
    means nothing is refused naming `f.<id>`); `bar`: with its filter bar's choices."""
    signed_in, client = visit.portal(db)
    dashboard = dashboards_repo.get_dashboard(db, viewer(signed_in, client), dashboard_id)
    watermark = watermark_for(client, visit.now)
    cache = services(visit.request).renderer.live
    timezone = partners_repo.days_timezone(db, client.partner_id, client.id)
    today = today_in(timezone, visit.now)
    filters = stored_filters(dashboard.filters)
    chosen = choose(filters, parse_filters(visit.request.query_params.multi_items()), today, timezone)
    version, html = live_view(
        db,
        dashboard,
        known_version=known_version,
        cache=cache,
        watermark=watermark,
        filters=chosen.raw,
        today=today,
        timezone=timezone,
    )
    choices = (
        filter_choices(db, filters, dashboards_repo.placed_klips(db, dashboard.id), cache)
        if bar and filters
        else {}
    )
    filter_bar = bar_of(filters, chosen, choices) if bar else []
    if html is not None and visit.brand is not None:
        html = recolour(html, visit.brand)  # the drawings are cached unbranded
    return LiveDashboard(signed_in, client, dashboard, version, html, chosen, filter_bar)


@router.get("/dashboards/{dashboard_id}", response_class=HTMLResponse)
async def client_dashboard(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, visitor(heading="Not found")],
    work: WorkDep,
) -> Response:
    """The live dashboard, for the users it is shared with; it updates itself when data refreshes."""
    live = await work(_live, visit, dashboard_id, None, True)
    return page(
        request,
        live.signed_in,
        "app_dashboard.html",
        client=live.client,
        dashboard=live.dashboard,
        version=live.version,
        klips=live.klips,
        poll_seconds=POLL_SECONDS,
        can_write=may_change(live.signed_in),
        can_build=may_build(live.signed_in),
        filter_bar=live.filter_bar,
        chosen=live.chosen.raw,
        filter_query=forms.filter_query(live.chosen),
    )


@router.get("/dashboards/{dashboard_id}/live")
async def client_dashboard_live(
    dashboard_id: PathId,
    visit: Annotated[Visit, visitor(json=True)],
    work: WorkDep,
    v: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """What the live page polls: the data version, and the new klips when it changed."""
    live = await work(_live, visit, dashboard_id, v)
    body: dict[str, Any] = {"available": True, "version": live.version}
    if live.klips is not None:
        body.update(title=live.dashboard.name, html=live.klips)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _export(db: Session, visit: Visit, clock: Clock, dashboard_id: int, fmt: str) -> ExportFile:
    signed_in, client = visit.portal(db)
    renderer = services(visit.request).renderer
    filters = parse_filters(visit.request.query_params.multi_items())
    return exports_service.render_export(
        db, clock, viewer(signed_in, client), renderer, dashboard_id, fmt, filters
    )


@router.get("/dashboards/{dashboard_id}/download")
async def client_download(
    dashboard_id: PathId,
    visit: Annotated[Visit, visitor(heading="Download not possible")],
    work: WorkDep,
    clock: ClockDep,
    format: forms.ExportFormat = "pdf",
) -> Response:
    return forms.download(await work(_export, visit, clock, dashboard_id, format))


def _extend_trial(db: Session, visit: Visit, clock: Clock) -> None:
    signed_in, client = visit.portal(db)
    if not may_change(signed_in):
        raise Refused(VIEW_ONLY, 403, heading="View only")
    clients_service.extend_trial(db, clock, signed_in.principal, client.id)


@router.post("/extend-trial")
async def extend_trial(visit: Annotated[Visit, form_sender()], work: WorkDep, clock: ClockDep) -> Response:
    await work(_extend_trial, visit, clock)
    return to("/app")


# The portal's forms: each goes back to its page, with what happened or why not.


def _as_viewer(db: Session, visit: Visit, action: Callable[..., T], *args: Any) -> T:
    signed_in, client = visit.portal(db)
    if not may_change(signed_in):
        raise Refused(VIEW_ONLY, 403)
    return action(db, viewer(signed_in, client), *args)


async def _portal_form(visit: Visit, work: WorkDep, action: Callable[..., str], *args: Any) -> Response:
    """Run one form's use case for the client the portal shows, and go back to the form's page."""
    return visit.done(await work(_as_viewer, visit, action, *args))


def _client_id(principal: Principal) -> int:
    assert principal.client_id is not None  # _viewer pins the portal's client
    return principal.client_id


def _draw_email(
    db: Session,
    principal: Principal,
    clock: Clock,
    renderer: Renderer,
    dashboard_id: int,
    to: str,
    fmt: str,
    filters: dict[str, str],
) -> exports_service.DashboardEmail:
    body = EmailIn.model_validate({"to": [to], "format": fmt})
    return exports_service.draw_dashboard_email(
        db, clock, principal, renderer, dashboard_id, list(body.to), body.format, filters
    )


def _email(
    db: Session,
    principal: Principal,
    clock: Clock,
    mailer: Mailer,
    renderer: Renderer,
    drawn: exports_service.DashboardEmail,
    to: str,
    settings: Settings,
) -> str:
    queued = exports_service.email_dashboard(db, clock, principal, mailer, renderer, drawn, settings)
    if not queued.queued:
        return f"The e-mail was not sent: {queued.reason}"
    return f"The dashboard is on its way to {to} as {drawn.fmt.upper()}."


@router.post("/dashboards/{dashboard_id}/email")
async def email_dashboard(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/app/dashboards/{dashboard_id}")],
    work: WorkDep,
    clock: ClockDep,
    to: Annotated[str, Form(max_length=254)] = "",
    format: Annotated[str, Form(max_length=10)] = "pdf",
) -> Response:
    svc = services(request)
    # The dashboard as its sender sees it: the filter values of the page the form was on.
    sent = await request.form()
    filters = parse_filters([(k, v) for k, v in sent.multi_items() if isinstance(v, str)])
    back_to = f"/app/dashboards/{dashboard_id}"
    visit.back = back_to + ("?" + forms.filter_query_of(filters) if filters else "")
    # Drawn in a read-only transaction first (`Work.reading`), then queued.
    drawn = await work.reading(
        _as_viewer, visit, _draw_email, clock, svc.renderer, dashboard_id, to, format, filters
    )
    return await _portal_form(visit, work, _email, clock, svc.mailer, svc.renderer, drawn, to, svc.settings)


PortalForm = Annotated[Visit, form_sender(back_to="/app")]


def _new_dashboard(db: Session, visit: Visit, clock: Clock, name: str) -> int:
    signed_in, client = visit.portal(db)
    if not may_change(signed_in):
        raise Refused(VIEW_ONLY, 403)
    principal = viewer(signed_in, client)
    owner = client_owner(db, principal, client.id)
    dashboard = dashboards_service.create_dashboard(db, clock, principal, owner, DashboardCreate(name=name))
    return dashboard.id


@router.post("/dashboards")
async def new_dashboard(
    visit: PortalForm, work: WorkDep, clock: ClockDep, name: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """A new, empty dashboard of the client, opened in the builder."""
    dashboard_id = await work(_new_dashboard, visit, clock, name)
    return to(f"/app/dashboards/{dashboard_id}/builder")


def _add_user(
    db: Session, principal: Principal, clock: Clock, inviter: users_service.Inviter, form: forms.UserForm
) -> str:
    return forms.add_user(db, clock, inviter, principal, _client_id(principal), form)


@router.post("/users")
async def add_user(
    request: Request, visit: PortalForm, work: WorkDep, clock: ClockDep, form: forms.UserFormDep
) -> Response:
    svc = services(request)
    inviter = users_service.Inviter(svc.mailer, svc.settings.base_url)
    return await _portal_form(visit, work, _add_user, clock, inviter, form)


def _remove_user(db: Session, principal: Principal, clock: Clock, user_id: int) -> str:
    return forms.remove_user(db, clock, principal, _client_id(principal), user_id)


@router.post("/users/{user_id}/remove")
async def remove_user(user_id: PathId, visit: PortalForm, work: WorkDep, clock: ClockDep) -> Response:
    return await _portal_form(visit, work, _remove_user, clock, user_id)


def _update_user(db: Session, principal: Principal, clock: Clock, user_id: int, name: str, role: str) -> str:
    return forms.update_user(db, clock, principal, _client_id(principal), user_id, name, role)


@router.post("/users/{user_id}/edit")
async def update_user(
    user_id: PathId,
    visit: PortalForm,
    work: WorkDep,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return await _portal_form(visit, work, _update_user, clock, user_id, name, role)


def _resend(
    db: Session, principal: Principal, clock: Clock, inviter: users_service.Inviter, user_id: int
) -> str:
    return forms.resend_invitation(db, clock, inviter, principal, _client_id(principal), user_id)


@router.post("/users/{user_id}/resend")
async def resend_invitation(
    user_id: PathId, request: Request, visit: PortalForm, work: WorkDep, clock: ClockDep
) -> Response:
    svc = services(request)
    inviter = users_service.Inviter(svc.mailer, svc.settings.base_url)
    return await _portal_form(visit, work, _resend, clock, inviter, user_id)


def _publish(
    db: Session, principal: Principal, clock: Clock, base_url: str, dashboard_id: int, form: forms.LinkForm
) -> str:
    return forms.publish(db, clock, base_url, principal, dashboard_id, form)


@router.post("/dashboards/{dashboard_id}/links")
async def publish(
    dashboard_id: PathId,
    request: Request,
    visit: PortalForm,
    work: WorkDep,
    clock: ClockDep,
    form: forms.LinkFormDep,
) -> Response:
    base_url = services(request).settings.base_url
    return await _portal_form(visit, work, _publish, clock, base_url, dashboard_id, form)


def _revoke(db: Session, principal: Principal, clock: Clock, link_id: int) -> str:
    return forms.revoke(db, clock, principal, link_id)


@router.post("/links/{link_id}/revoke")
async def revoke(link_id: PathId, visit: PortalForm, work: WorkDep, clock: ClockDep) -> Response:
    return await _portal_form(visit, work, _revoke, clock, link_id)


def _add_source(
    db: Session, principal: Principal, clock: Clock, guard: Guard, vault: Vault, form: SourceFields
) -> str:
    data = form.create()
    owner = client_owner(db, principal, _client_id(principal))
    source = sources_service.create_source(db, clock, principal, owner, data, guard, vault)
    return f"Data source {source.name} added."


@router.post("/datasources")
async def add_source(
    request: Request, visit: PortalForm, work: WorkDep, clock: ClockDep, form: SourceFieldsDep
) -> Response:
    """A data source of the client, for its admins and editors (the service decides)."""
    svc = services(request)
    return await _portal_form(visit, work, _add_source, clock, svc.guard, svc.vault, form)


def _test_request(
    db: Session, visit: Visit, vault: Vault, source_id: int | None, form: SourceFields
) -> tuple[SignedIn, SourceRequest]:
    signed_in, client = visit.portal(db)
    if not may_change(signed_in):
        raise Refused(VIEW_ONLY, 403)
    principal = viewer(signed_in, client)
    return signed_in, probe.prepare(
        db, principal, form.probe(), client_id=client.id, vault=vault, source_id=source_id
    )


@router.post("/datasources/test", response_class=HTMLResponse)
async def test_source(
    request: Request,
    visit: Annotated[Visit, form_sender()],
    form: SourceFieldsDep,
    source: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> Response:
    """Fetch once with the form's settings and show the first rows or why not; nothing is saved.
    `source`: the stored source being changed, whose secrets a "*****" stands for."""
    return await connection_test(request, visit, _test_request, source, form)


@router.post("/datasources/{source_id}")
async def change_source(
    source_id: PathId,
    request: Request,
    visit: PortalForm,
    work: WorkDep,
    clock: ClockDep,
    form: SourceFieldsDep,
) -> Response:
    svc = services(request)
    return await _portal_form(visit, work, change_settings, clock, svc.guard, svc.vault, source_id, form)

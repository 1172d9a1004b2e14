"""One client's page in the partner console (/partner/clients/<id>) and its forms: status, trial,
details, allocation, users, data sources, dashboards and their klips, shares and published links.

Every form posts with the session's CSRF token, calls the same service function as the API (so
the rules live in one place), and goes back to the client's page saying what happened; a refusal
comes back there as its plain sentence, and nothing of it is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.api.deps import ClockDep, PathId, WorkDep, services
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.branding import brand_for
from tenantry.clients import properties
from tenantry.clients import repository as clients_repo
from tenantry.clients import service as clients_service
from tenantry.clients.schemas import ClientOut, ClientUpdate
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards import service as dashboards_service
from tenantry.dashboards.live import parse_filters
from tenantry.dashboards.schemas import DashboardCreate, KlipIn
from tenantry.datasources import probe
from tenantry.datasources import repository as sources_repo
from tenantry.datasources import service as sources_service
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.schemas import DataSourceOut, DataSourceUpdate
from tenantry.errors import InvalidInput
from tenantry.exports import service as exports_service
from tenantry.exports.service import ExportFile
from tenantry.fields import INT64_MAX
from tenantry.links import repository as links_repo
from tenantry.outbound import Guard
from tenantry.owners import client_owner
from tenantry.partners import repository as partners_repo
from tenantry.policy import Status
from tenantry.users import repository as users_repo
from tenantry.users import service as users_service
from tenantry.vault import Vault
from tenantry.web import forms
from tenantry.web.clients import AllocationForm, AllocationFormDep, Text, can_write, status_badge
from tenantry.web.pages import STATUS_WORDS, PageRoute, Visit, amount, form_sender, page, visitor
from tenantry.web.plan import RESOURCE_WORDS, pool_lines
from tenantry.web.sources import (
    BLANK_ROWS,
    REFRESH_CHOICES,
    PropertyRowsDep,
    SourceFields,
    SourceFieldsDep,
    change_settings,
    checked_properties,
    connection_test,
)

router = APIRouter(prefix="/partner", include_in_schema=False, route_class=PageRoute)

MOVE_WORDS = {
    Status.TRIAL: "Start the trial",
    Status.ACTIVE: "Make Active",
    Status.DISABLED: "Disable",
}


def _missing_words(missing: list[str]) -> list[str]:
    words = []
    for item in missing:
        kind, _, resource = item.partition(":")
        what = RESOURCE_WORDS.get(resource, resource).lower()
        if kind == "dashboards":
            words.append("Allocate at least one dashboard.")
        elif kind == "users":
            words.append("Allocate at least one user.")
        elif kind == "allocation_below_usage":
            words.append(f"The allocation of {what} is below what the client already uses.")
        elif kind == "pool":
            words.append(f"Your plan has not enough {what} left for this allocation.")
        elif kind == "status":
            words.append("A client in this status cannot become Active.")
    return words


# Status changes and audit records the client's page shows: the latest (the API lists them all).
HISTORY_SHOWN = 200
AUDIT_SHOWN = 50


def _client_page(db: Session, visit: Visit, client_id: int) -> tuple[SignedIn, dict[str, Any]]:
    """Everything the client's page shows, read in one go."""
    signed_in = visit.console(db)
    principal = signed_in.principal
    now = visit.now
    client = clients_repo.get_client(db, principal, client_id)
    partner = partners_repo.get_partner(db, principal.partner_id)
    owner = client_owner(db, principal, client_id)
    stored = Status(client.status)
    check = clients_service.activation_check(db, principal, client_id)
    sources = list(sources_repo.list_sources(db, owner, 200, 0)[0])
    source_columns = sources_repo.first_row_columns(db, [s.id for s in sources])
    dashboards = [
        d.model_dump()
        for d in dashboards_service.dashboard_outs(db, dashboards_repo.list_dashboards(db, owner, 200, 0)[0])
    ]
    for dashboard in dashboards:
        dashboard["links"] = list(links_repo.list_links(db, dashboard["id"], 200, 0)[0])
    users = list(users_repo.list_client_users(db, client.id, 200, 0)[0])
    calendar = partners_repo.partner_meter_calendar(db, client.partner_id)
    calls = services(visit.request).meter.client_calls_today([client.id], calendar, now)
    # The latest changes (the ones a partner looks for), oldest first among them.
    history_total = clients_repo.status_history(db, client.partner_id, client.id, 0, 0)[1]
    history = clients_repo.status_history(
        db, client.partner_id, client.id, HISTORY_SHOWN, max(0, history_total - HISTORY_SHOWN)
    )[0]
    audit = clients_repo.audit_log(db, client.partner_id, client.id, AUDIT_SHOWN)
    return signed_in, {
        "client": client,
        "view": ClientOut.of(client, now, api_calls_today=calls[client.id]).model_dump(),
        "badge": status_badge(client, now),
        "moves": [(s.value, MOVE_WORDS[s]) for s in lifecycle.allowed_next(stored) if s in MOVE_WORDS],
        "activation_ready": check["ready"],
        "activation_missing": _missing_words(check["missing"]),
        "extension_days": partner.trial_extension_days,
        "partner_timezone": partner.timezone,
        "pool": {line["resource"]: line for line in pool_lines(partner)},
        "resource_words": RESOURCE_WORDS,
        "users": users,
        "user_names": {u.id: u.name for u in users},
        "sources": sources,
        "source_views": {s.id: DataSourceOut.of(s) for s in sources},
        "source_names": {s.id: s.name for s in sources},
        "source_columns": source_columns,
        "columns": sorted({column for names in source_columns.values() for column in names}),
        "refresh_choices": REFRESH_CHOICES,
        "blank_rows": BLANK_ROWS,
        "properties": properties.properties_of(db, principal, client.id),
        "dashboards": dashboards,
        "history": history,
        "history_total": history_total,
        "audit_log": audit[0],
        "audit_total": audit[1],
        "can_write": can_write(signed_in),
        "client_logo_url": brand_for(db, principal.partner_id, client.id).client_logo_url,
    }


@router.get("/clients/{client_id}", response_class=HTMLResponse)
async def client_page(
    client_id: PathId,
    request: Request,
    visit: Annotated[Visit, visitor(heading="Not found")],
    work: WorkDep,
) -> Response:
    signed_in, context = await work(_client_page, visit, client_id)
    return page(request, signed_in, "partner_client.html", **context)


def _export(db: Session, visit: Visit, clock: Clock, dashboard_id: int, fmt: str) -> ExportFile:
    principal = visit.console(db).principal
    filters = parse_filters(visit.request.query_params.multi_items())
    return exports_service.render_export(
        db, clock, principal, services(visit.request).renderer, dashboard_id, fmt, filters
    )


@router.get("/dashboards/{dashboard_id}/download")
async def partner_download(
    dashboard_id: PathId,
    visit: Annotated[Visit, visitor(heading="Download not possible")],
    work: WorkDep,
    clock: ClockDep,
    format: forms.ExportFormat = "pdf",
) -> Response:
    return forms.download(await work(_export, visit, clock, dashboard_id, format))


# The client page's forms: each goes back to the page, with what happened or why not.

ClientForm = Annotated[Visit, form_sender(back_to="/partner/clients/{client_id}")]


def _as_partner(db: Session, visit: Visit, action: Callable[..., str], *args: Any) -> str:
    return action(db, visit.partner_user(db).principal, *args)


async def _client_form(visit: Visit, work: WorkDep, action: Callable[..., str], *args: Any) -> Response:
    """Run one form's use case as the partner user who sent it, and go back to the client's page."""
    return visit.done(await work(_as_partner, visit, action, *args))


def _change_status(
    db: Session, principal: Principal, clock: Clock, client_id: int, status: str, reason: str
) -> str:
    data = ClientUpdate(status=status, reason=reason)  # type: ignore[arg-type]
    client = clients_service.update_client(db, clock, principal, client_id, data)
    return f"{client.name} is now {STATUS_WORDS[lifecycle.client_status(client, clock.now())]}."


@router.post("/clients/{client_id}/status")
async def change_status(
    client_id: PathId,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    status: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    return await _client_form(visit, work, _change_status, clock, client_id, status, reason)


def _extend_trial(db: Session, principal: Principal, clock: Clock, client_id: int) -> str:
    client = clients_service.extend_trial(db, clock, principal, client_id)
    trial = lifecycle.trial_of(client)
    return f"Trial extended until {trial.ends_at:%Y-%m-%d %H:%M} UTC." if trial else "Trial extended."


@router.post("/clients/{client_id}/extend-trial")
async def extend_trial(client_id: PathId, visit: ClientForm, work: WorkDep, clock: ClockDep) -> Response:
    return await _client_form(visit, work, _extend_trial, clock, client_id)


def _change_details(
    db: Session,
    principal: Principal,
    clock: Clock,
    client_id: int,
    name: str,
    description: str,
    external_id: str,
    timezone: str,
) -> str:
    data = ClientUpdate(
        name=name,
        description=description,
        external_id=external_id.strip() or None,
        timezone=timezone.strip() or None,
    )
    clients_service.update_client(db, clock, principal, client_id, data)
    return "Details saved."


@router.post("/clients/{client_id}/details")
async def change_details(
    client_id: PathId,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    name: Text = "",
    description: Text = "",
    external_id: Text = "",
    timezone: Text = "",
) -> Response:
    return await _client_form(
        visit, work, _change_details, clock, client_id, name, description, external_id, timezone
    )


def _change_allocation(
    db: Session, principal: Principal, clock: Clock, client_id: int, allocation: AllocationForm
) -> str:
    clients_service.update_client(
        db, clock, principal, client_id, ClientUpdate(resources=allocation.resources())
    )
    return "Allocation saved."


@router.post("/clients/{client_id}/allocation")
async def change_allocation(
    client_id: PathId, visit: ClientForm, work: WorkDep, clock: ClockDep, allocation: AllocationFormDep
) -> Response:
    return await _client_form(visit, work, _change_allocation, clock, client_id, allocation)


def _add_user(
    db: Session,
    principal: Principal,
    clock: Clock,
    inviter: users_service.Inviter,
    client_id: int,
    form: forms.UserForm,
) -> str:
    return forms.add_user(db, clock, inviter, principal, client_id, form)


@router.post("/clients/{client_id}/users")
async def add_user(
    client_id: PathId,
    request: Request,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    form: forms.UserFormDep,
) -> Response:
    svc = services(request)
    inviter = users_service.Inviter(svc.mailer, svc.settings.base_url)
    return await _client_form(visit, work, _add_user, clock, inviter, client_id, form)


def _remove_user(db: Session, principal: Principal, clock: Clock, client_id: int, user_id: int) -> str:
    return forms.remove_user(db, clock, principal, client_id, user_id)


@router.post("/clients/{client_id}/users/{user_id}/remove")
async def remove_user(
    client_id: PathId, user_id: PathId, visit: ClientForm, work: WorkDep, clock: ClockDep
) -> Response:
    return await _client_form(visit, work, _remove_user, clock, client_id, user_id)


def _update_user(
    db: Session, principal: Principal, clock: Clock, client_id: int, user_id: int, name: str, role: str
) -> str:
    return forms.update_user(db, clock, principal, client_id, user_id, name, role)


@router.post("/clients/{client_id}/users/{user_id}/edit")
async def update_user(
    client_id: PathId,
    user_id: PathId,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return await _client_form(visit, work, _update_user, clock, client_id, user_id, name, role)


def _resend(
    db: Session,
    principal: Principal,
    clock: Clock,
    inviter: users_service.Inviter,
    client_id: int,
    user_id: int,
) -> str:
    return forms.resend_invitation(db, clock, inviter, principal, client_id, user_id)


@router.post("/clients/{client_id}/users/{user_id}/resend")
async def resend_invitation(
    client_id: PathId, user_id: PathId, request: Request, visit: ClientForm, work: WorkDep, clock: ClockDep
) -> Response:
    svc = services(request)
    inviter = users_service.Inviter(svc.mailer, svc.settings.base_url)
    return await _client_form(visit, work, _resend, clock, inviter, client_id, user_id)


def _add_source(
    db: Session,
    principal: Principal,
    clock: Clock,
    guard: Guard,
    vault: Vault,
    client_id: int,
    form: SourceFields,
) -> str:
    data = form.create()
    owner = client_owner(db, principal, client_id)
    source = sources_service.create_source(db, clock, principal, owner, data, guard, vault)
    return f"Data source {source.name} added."


@router.post("/clients/{client_id}/datasources")
async def add_source(
    client_id: PathId,
    request: Request,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    form: SourceFieldsDep,
) -> Response:
    svc = services(request)
    return await _client_form(visit, work, _add_source, clock, svc.guard, svc.vault, client_id, form)


def _test_request(
    db: Session, visit: Visit, vault: Vault, client_id: int, source_id: int | None, form: SourceFields
) -> tuple[SignedIn, SourceRequest]:
    signed_in = visit.partner_user(db)
    return signed_in, probe.prepare(
        db, signed_in.principal, form.probe(), client_id=client_id, vault=vault, source_id=source_id
    )


@router.post("/clients/{client_id}/datasources/test", response_class=HTMLResponse)
async def test_source(
    client_id: PathId,
    request: Request,
    visit: Annotated[Visit, form_sender()],
    form: SourceFieldsDep,
    source: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> Response:
    """Fetch once with the form's settings and show the first rows or why not; nothing is saved.
    `source`: the stored source being changed, whose secrets a "*****" stands for."""
    return await connection_test(request, visit, _test_request, client_id, source, form)


@router.post("/clients/{client_id}/datasources/{source_id}")
async def change_source(
    client_id: PathId,
    source_id: PathId,
    request: Request,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    form: SourceFieldsDep,
) -> Response:
    svc = services(request)
    return await _client_form(visit, work, change_settings, clock, svc.guard, svc.vault, source_id, form)


def _set_properties(
    db: Session, principal: Principal, clock: Clock, client_id: int, values: dict[str, str]
) -> str:
    saved = properties.set_properties(db, clock, principal, client_id, checked_properties(values))
    return f"{len(saved)} propert{'y' if len(saved) == 1 else 'ies'} saved."


@router.post("/clients/{client_id}/properties")
async def set_properties(
    client_id: PathId, visit: ClientForm, work: WorkDep, clock: ClockDep, values: PropertyRowsDep
) -> Response:
    return await _client_form(visit, work, _set_properties, clock, client_id, values)


def _refresh_source(db: Session, principal: Principal, clock: Clock, source_id: int) -> str:
    source = sources_service.queue_refresh(db, clock, principal, source_id)
    return f"{source.name} is queued for a refresh."


@router.post("/clients/{client_id}/datasources/{source_id}/refresh")
async def refresh_source(
    client_id: PathId, source_id: PathId, visit: ClientForm, work: WorkDep, clock: ClockDep
) -> Response:
    return await _client_form(visit, work, _refresh_source, clock, source_id)


def _change_refresh_rate(
    db: Session, principal: Principal, clock: Clock, guard: Guard, source_id: int, refresh_interval: str
) -> str:
    data = DataSourceUpdate(refresh_interval=amount(refresh_interval))
    source = sources_service.update_source(db, clock, principal, source_id, data, guard)
    return f"Refresh rate of {source.name} saved."


@router.post("/clients/{client_id}/datasources/{source_id}/rate")
async def change_refresh_rate(
    client_id: PathId,
    source_id: PathId,
    request: Request,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    refresh_interval: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    guard = services(request).guard
    return await _client_form(visit, work, _change_refresh_rate, clock, guard, source_id, refresh_interval)


KlipField = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class KlipForm:
    """The klip builder's fields, as typed: checked by the same schema as the API's klips."""

    title: str
    kind: str
    datasource_id: str
    columns: dict[str, str]

    def klip(self) -> KlipIn:
        source = amount(self.datasource_id)
        if source is None:
            raise InvalidInput("Choose the data source the klip shows.")
        return KlipIn.model_validate(
            {"title": self.title, "kind": self.kind, "datasource_id": source, "columns": self.columns}
        )


def klip_form(
    title: KlipField = "",
    kind: KlipField = "value",
    datasource_id: KlipField = "",
    x: KlipField = "",
    y: KlipField = "",
    label: KlipField = "",
    value: KlipField = "",
) -> KlipForm:
    given = {"x": x, "y": y, "label": label, "value": value}
    return KlipForm(title, kind, datasource_id, {k: v.strip() for k, v in given.items() if v.strip()})


KlipFormDep = Annotated[KlipForm, Depends(klip_form)]


def _add_dashboard(
    db: Session, principal: Principal, clock: Clock, client_id: int, name: str, form: KlipForm
) -> str:
    klips = [form.klip()] if form.title.strip() else []
    owner = client_owner(db, principal, client_id)
    dashboard = dashboards_service.create_dashboard(
        db, clock, principal, owner, DashboardCreate(name=name, klips=klips)
    )
    return f"Dashboard {dashboard.name} created."


@router.post("/clients/{client_id}/dashboards")
async def add_dashboard(
    client_id: PathId,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    form: KlipFormDep,
    name: KlipField = "",
) -> Response:
    return await _client_form(visit, work, _add_dashboard, clock, client_id, name, form)


def _add_klip(db: Session, principal: Principal, clock: Clock, dashboard_id: int, form: KlipForm) -> str:
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
    dashboards_service.add_klip(db, clock, principal, dashboard_id, form.klip())
    return f"Klip {form.title} added to {dashboard.name}."


@router.post("/clients/{client_id}/dashboards/{dashboard_id}/klips")
async def add_klip(
    client_id: PathId,
    dashboard_id: PathId,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    form: KlipFormDep,
) -> Response:
    return await _client_form(visit, work, _add_klip, clock, dashboard_id, form)


def _share(db: Session, principal: Principal, clock: Clock, dashboard_id: int, user_ids: list[int]) -> str:
    shared = dashboards_service.set_shares(db, clock, principal, dashboard_id, user_ids)
    return f"Shared with {len(shared)} user{'' if len(shared) == 1 else 's'}."


@router.post("/clients/{client_id}/dashboards/{dashboard_id}/shares")
async def share_dashboard(
    client_id: PathId,
    dashboard_id: PathId,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    user_ids: Annotated[list[Annotated[int, Field(ge=1, le=INT64_MAX)]] | None, Form()] = None,
) -> Response:
    return await _client_form(visit, work, _share, clock, dashboard_id, user_ids or [])


def _publish(
    db: Session, principal: Principal, clock: Clock, base_url: str, dashboard_id: int, form: forms.LinkForm
) -> str:
    return forms.publish(db, clock, base_url, principal, dashboard_id, form)


@router.post("/clients/{client_id}/dashboards/{dashboard_id}/links")
async def publish(
    client_id: PathId,
    dashboard_id: PathId,
    request: Request,
    visit: ClientForm,
    work: WorkDep,
    clock: ClockDep,
    form: forms.LinkFormDep,
) -> Response:
    base_url = services(request).settings.base_url
    return await _client_form(visit, work, _publish, clock, base_url, dashboard_id, form)


def _revoke(db: Session, principal: Principal, clock: Clock, link_id: int) -> str:
    return forms.revoke(db, clock, principal, link_id)


@router.post("/clients/{client_id}/links/{link_id}/revoke")
async def revoke(
    client_id: PathId, link_id: PathId, visit: ClientForm, work: WorkDep, clock: ClockDep
) -> Response:
    return await _client_form(visit, work, _revoke, clock, link_id)

"""The partner console: the clients list, a client's page, the new-client form and the plan.

Every form posts with the session's CSRF token, calls the same service function as the API (so
the rules live in one place), and redirects back; a refusal comes back as its plain sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.api.deps import ClockDep, DbSession, PathId, services
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.clients import repository as clients_repo
from tenantry.clients import service as clients_service
from tenantry.clients.schemas import ClientCreate, ClientUpdate, Resources
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards import service as dashboards_service
from tenantry.dashboards.schemas import DashboardCreate, DashboardUpdate, KlipIn
from tenantry.datasources import repository as sources_repo
from tenantry.datasources import service as sources_service
from tenantry.datasources.fetch import FetchError, parse_csv
from tenantry.datasources.schemas import DataSourceUpdate, InlineSourceCreate, UrlSourceCreate
from tenantry.db.models import Client, Partner
from tenantry.errors import InvalidInput, NotFound
from tenantry.links import repository as links_repo
from tenantry.links import service as links_service
from tenantry.links.schemas import LinkCreate
from tenantry.owners import client_owner
from tenantry.partners import repository as partners_repo
from tenantry.policy import EffectiveStatus, Status
from tenantry.text import refusal
from tenantry.users import repository as users_repo
from tenantry.users import service as users_service
from tenantry.users.schemas import ClientUserCreate
from tenantry.web.routes import (
    STATUS_WORDS,
    CsrfField,
    ExportFormat,
    _act,
    _back,
    _form_sender,
    _page,
    _signed_in,
    _to,
    download,
)

router = APIRouter(prefix="/partner", include_in_schema=False)

PAGE_SIZE = 50
RESOURCE_WORDS = {
    "dashboards": "Dashboards",
    "users": "Users",
    "published_links": "Published links",
    "api_calls_per_day": "API calls per day",
}
STATUS_FILTERS = {
    "": "All statuses",
    "setup": "Setup",
    "trial": "Trial",
    "trial_expired": "Trial ended",
    "active": "Active",
    "disabled": "Disabled",
}
MOVE_WORDS = {
    Status.TRIAL: "Start the trial",
    Status.ACTIVE: "Make Active",
    Status.DISABLED: "Disable",
}
REFRESH_CHOICES = {
    "": "Manual only",
    "60": "Every minute",
    "300": "Every 5 minutes",
    "900": "Every 15 minutes",
    "3600": "Every hour",
    "86400": "Every day",
}
Text = Annotated[str, Form(max_length=5000)]


def _partner(request: Request, db: Session, clock: ClockDep) -> SignedIn | Response:
    signed_in = _signed_in(request, db, clock)
    if signed_in is None:
        return _to("/login")
    if not signed_in.is_partner or signed_in.row.acting_client is not None:
        return _to("/app")
    return signed_in


def _can_write(signed_in: SignedIn) -> bool:
    return signed_in.user.role in ("admin", "editor")


def status_badge(client: Client, now: datetime) -> dict[str, Any]:
    """The status as the list shows it, with the trial's days left (or its end) below it."""
    status = lifecycle.client_status(client, now)
    trial = lifecycle.trial_of(client)
    below = None
    if status is EffectiveStatus.TRIAL and trial is not None:
        days = trial.days_remaining(now)
        below = f"{days} day{'' if days == 1 else 's'} left"
    elif status is EffectiveStatus.TRIAL_EXPIRED:
        below = "Trial ended"
    return {
        "status": status.value,
        "words": STATUS_WORDS[status],
        "below": below,
        "extended": status in (EffectiveStatus.TRIAL, EffectiveStatus.TRIAL_EXPIRED)
        and trial is not None
        and trial.extended,
    }


@router.get("/clients", response_class=HTMLResponse)
def clients_list(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    status: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page_number: Annotated[str, Query(alias="page", max_length=20)] = "1",
) -> Response:
    signed_in = _partner(request, db, clock)
    if isinstance(signed_in, Response):
        return signed_in
    why = refusal(q)
    if why is not None:
        return _back(request, "/partner/clients", error=f"Search: {why}.")
    now = clock.now()
    status = status if status in STATUS_FILTERS else ""
    # A hand-edited address gets the first page, not an error.
    page = int(page_number) if page_number.isdigit() and 0 < int(page_number) < 10**7 else 1
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    # The same query as GET /api/1/clients: one indexed page and a counter or a count.
    items, total = clients_repo.list_clients(
        db,
        partner,
        now=now,
        status=status or None,
        external_id=None,
        q=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    pages = max(1, math.ceil(total / PAGE_SIZE))

    def link(to_page: int) -> str:
        query = {k: v for k, v in {"status": status, "q": q, "page": str(to_page)}.items() if v}
        return "/partner/clients?" + urlencode(query)

    rows = [
        {
            "id": c.id,
            "name": c.name,
            "external_id": c.external_id,
            "badge": status_badge(c, now),
            "allocation": clients_repo.allocation_of(c),
            "usage": clients_repo.usage_of(c),
            "last_sign_in": c.last_sign_in,
        }
        for c in items
    ]
    return _page(
        request,
        signed_in,
        "partner_clients.html",
        partner=partner,
        clients=rows,
        total=total,
        first=(page - 1) * PAGE_SIZE + 1 if rows else 0,
        last=(page - 1) * PAGE_SIZE + len(rows),
        previous=link(page - 1) if page > 1 else None,
        next=link(page + 1) if page < pages else None,
        status=status,
        q=q,
        filters=STATUS_FILTERS,
        can_write=_can_write(signed_in),
    )


@router.get("/clients/new", response_class=HTMLResponse)
def new_client_form(request: Request, db: DbSession, clock: ClockDep) -> Response:
    signed_in = _partner(request, db, clock)
    if isinstance(signed_in, Response):
        return signed_in
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    return _page(
        request,
        signed_in,
        "partner_client_new.html",
        pool=_pool(partner),
        resource_words=RESOURCE_WORDS,
        can_write=_can_write(signed_in),
    )


def _amount(value: str) -> int | None:
    """A number field: empty means "not given"; anything else must be a whole number."""
    value = value.strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a whole number.") from None


@dataclass(frozen=True)
class AllocationForm:
    """The allocation fields as typed; an empty field leaves that resource as it is."""

    given: dict[str, str]

    def resources(self) -> Resources:
        amounts = {resource: _amount(value) for resource, value in self.given.items()}
        return Resources(**{k: v for k, v in amounts.items() if v is not None})


def allocation_form(
    dashboards: Text = "", users: Text = "", published_links: Text = "", api_calls_per_day: Text = ""
) -> AllocationForm:
    return AllocationForm(
        {
            "dashboards": dashboards,
            "users": users,
            "published_links": published_links,
            "api_calls_per_day": api_calls_per_day,
        }
    )


AllocationFormDep = Annotated[AllocationForm, Depends(allocation_form)]


@router.post("/clients")
def create_client(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    allocation: AllocationFormDep,
    name: Text = "",
    description: Text = "",
    external_id: Text = "",
    status: Annotated[str, Form(max_length=20)] = "setup",
    csrf_token: CsrfField = "",
) -> Response:
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    if not signed_in.is_partner:
        return _to("/app")
    created: list[Client] = []

    def action() -> str:
        data = ClientCreate(
            name=name,
            description=description,
            external_id=external_id.strip() or None,
            status=status,  # type: ignore[arg-type]
            resources=allocation.resources(),
        )
        created.append(clients_service.create_client(db, clock, signed_in.principal, data))
        return f"Client {created[0].name} created."

    response = _act(request, db, "/partner/clients/new", action)
    if created:
        response.headers["location"] = f"/partner/clients/{created[0].id}"
    return response


def _pool(partner: Partner) -> list[dict[str, Any]]:
    lines = []
    for resource, line in partners_repo.pool_lines(partner).items():
        total = line.total
        scale = max(total, line.used_by_partner + line.allocated, 1)
        lines.append(
            {
                "resource": resource,
                "words": RESOURCE_WORDS[resource],
                "unlimited": line.unlimited,
                "total": total,
                "yours": line.used_by_partner,
                "allocated": line.allocated,
                "remaining": line.remaining,
                "yours_pct": round(100 * line.used_by_partner / scale, 1),
                "allocated_pct": round(100 * line.allocated / scale, 1),
            }
        )
    return lines


@router.get("/plan", response_class=HTMLResponse)
def plan(request: Request, db: DbSession, clock: ClockDep) -> Response:
    signed_in = _partner(request, db, clock)
    if isinstance(signed_in, Response):
        return signed_in
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    return _page(request, signed_in, "partner_plan.html", partner=partner, pool=_pool(partner))


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


@router.get("/clients/{client_id}", response_class=HTMLResponse)
def client_page(client_id: PathId, request: Request, db: DbSession, clock: ClockDep) -> Response:
    signed_in = _partner(request, db, clock)
    if isinstance(signed_in, Response):
        return signed_in
    principal = signed_in.principal
    now = clock.now()
    try:
        client = clients_repo.get_client(db, principal, client_id)
    except NotFound:
        return _page(request, signed_in, "message.html", 404, heading="Not found", message="No such client.")
    partner = partners_repo.get_partner(db, principal.partner_id)
    owner = client_owner(db, principal, client_id)
    stored = Status(client.status)
    check = clients_service.activation_check(db, principal, client_id)
    sources = list(sources_repo.list_sources(db, owner, 200, 0)[0])
    source_columns = sources_repo.first_row_columns(db, [s.id for s in sources])
    dashboards = dashboards_service.dashboard_views(
        db, list(dashboards_repo.list_dashboards(db, owner, 200, 0)[0])
    )
    for dashboard in dashboards:
        dashboard["links"] = list(links_repo.list_links(db, dashboard["id"], 200, 0)[0])
    users = list(users_repo.list_client_users(db, client.id, 200, 0)[0])
    return _page(
        request,
        signed_in,
        "partner_client.html",
        client=client,
        view=clients_service.client_view(client, now),
        badge=status_badge(client, now),
        moves=[(s.value, MOVE_WORDS[s]) for s in lifecycle.allowed_next(stored) if s in MOVE_WORDS],
        activation_ready=check["ready"],
        activation_missing=_missing_words(check["missing"]),
        extension_days=partner.trial_extension_days,
        pool={line["resource"]: line for line in _pool(partner)},
        resource_words=RESOURCE_WORDS,
        users=users,
        user_names={u.id: u.name for u in users},
        sources=sources,
        source_names={s.id: s.name for s in sources},
        source_columns=source_columns,
        columns=sorted({column for names in source_columns.values() for column in names}),
        refresh_choices=REFRESH_CHOICES,
        dashboards=dashboards,
        history=clients_repo.status_history(db, client.partner_id, client.id, 200, 0)[0],
        audit_log=clients_repo.audit_log(db, client.partner_id, client.id, 50),
        can_write=_can_write(signed_in),
    )


def _client_form(
    request: Request,
    db: Session,
    clock: ClockDep,
    csrf_token: str,
    client_id: int,
    action: Callable[[Principal], str],
) -> Response:
    """A form on a client's page: checked, run, and back to the page with its outcome."""
    signed_in = _form_sender(request, db, clock, csrf_token)
    if isinstance(signed_in, Response):
        return signed_in
    if not signed_in.is_partner:
        return _to("/app")
    return _act(request, db, f"/partner/clients/{client_id}", lambda: action(signed_in.principal))


@router.get("/dashboards/{dashboard_id}/download")
def partner_download(
    dashboard_id: PathId, request: Request, db: DbSession, clock: ClockDep, format: ExportFormat = "pdf"
) -> Response:
    signed_in = _partner(request, db, clock)
    if isinstance(signed_in, Response):
        return signed_in
    return download(request, db, clock, signed_in, signed_in.principal, dashboard_id, format)


@router.post("/clients/{client_id}/status")
def change_status(
    client_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    status: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        data = ClientUpdate(status=status, reason=reason)  # type: ignore[arg-type]
        client = clients_service.update_client(db, clock, principal, client_id, data)
        return f"{client.name} is now {STATUS_WORDS[lifecycle.client_status(client, clock.now())]}."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/extend-trial")
def extend_trial(
    client_id: PathId, request: Request, db: DbSession, clock: ClockDep, csrf_token: CsrfField = ""
) -> Response:
    def action(principal: Principal) -> str:
        client = clients_service.extend_trial(db, clock, principal, client_id)
        trial = lifecycle.trial_of(client)
        return f"Trial extended until {trial.ends_at:%Y-%m-%d %H:%M} UTC." if trial else "Trial extended."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/details")
def change_details(
    client_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    name: Text = "",
    description: Text = "",
    external_id: Text = "",
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        data = ClientUpdate(name=name, description=description, external_id=external_id.strip() or None)
        clients_service.update_client(db, clock, principal, client_id, data)
        return "Details saved."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/allocation")
def change_allocation(
    client_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    allocation: AllocationFormDep,
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        data = ClientUpdate(resources=allocation.resources())
        clients_service.update_client(db, clock, principal, client_id, data)
        return "Allocation saved."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@dataclass(frozen=True)
class UserForm:
    email: str
    name: str
    role: str
    password: str


def user_form(
    email: Annotated[str, Form(max_length=254)] = "",
    name: Annotated[str, Form(max_length=200)] = "",
    role: Annotated[str, Form(max_length=20)] = "member",
    password: Annotated[str, Form(max_length=200)] = "",
) -> UserForm:
    return UserForm(email, name, role, password)


UserFormDep = Annotated[UserForm, Depends(user_form)]


def add_user_action(
    request: Request, db: Session, clock: ClockDep, client_id: int, form: UserForm
) -> Callable[[Principal], str]:
    """Adding a client user, from the console or the portal: the same use case as the API."""

    def action(principal: Principal) -> str:
        svc = services(request)
        data = ClientUserCreate(
            email=form.email,
            name=form.name,
            role=form.role,  # type: ignore[arg-type]
            password=form.password or None,
        )
        inviter = users_service.Inviter(svc.mailer, svc.settings.base_url)
        user, delivery = users_service.add_client_user(db, clock, inviter, principal, client_id, data)
        if delivery is not None and not delivery.queued:
            return f"{user.name} added; the invitation was not sent ({delivery.reason})."
        if delivery is not None:
            return f"{user.name} added; an invitation is on its way to {user.email}."
        return f"{user.name} added."

    return action


@router.post("/clients/{client_id}/users")
def add_user(
    client_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    form: UserFormDep,
    csrf_token: CsrfField = "",
) -> Response:
    action = add_user_action(request, db, clock, client_id, form)
    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/users/{user_id}/remove")
def remove_user(
    client_id: PathId,
    user_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        users_service.remove_client_user(db, clock, principal, client_id, user_id)
        return "User removed."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/datasources")
def add_source(
    client_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    name: Annotated[str, Form(max_length=200)] = "",
    kind: Annotated[str, Form(max_length=10)] = "url",
    url: Annotated[str, Form(max_length=2000)] = "",
    format: Annotated[str, Form(max_length=10)] = "csv",
    refresh_interval: Annotated[str, Form(max_length=10)] = "",
    csv_text: Annotated[str, Form(max_length=1_000_000)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        data: UrlSourceCreate | InlineSourceCreate
        if kind == "inline":
            try:
                rows = parse_csv(csv_text)
            except FetchError as exc:
                raise InvalidInput(str(exc)) from None
            data = InlineSourceCreate(name=name, kind="inline", rows=rows)
        else:
            data = UrlSourceCreate(
                name=name,
                kind="url",
                url=url,  # type: ignore[arg-type]
                format=format,  # type: ignore[arg-type]
                refresh_interval=_amount(refresh_interval),
            )
        owner = client_owner(db, principal, client_id)
        guard = services(request).guard
        source = sources_service.create_source(db, clock, principal, owner, data, guard)
        return f"Data source {source.name} added."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/datasources/{source_id}/refresh")
def refresh_source(
    client_id: PathId,
    source_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        source = sources_service.queue_refresh(db, clock, principal, source_id)
        return f"{source.name} is queued for a refresh."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/datasources/{source_id}/rate")
def change_refresh_rate(
    client_id: PathId,
    source_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    refresh_interval: Annotated[str, Form(max_length=10)] = "",
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        data = DataSourceUpdate(refresh_interval=_amount(refresh_interval))
        source = sources_service.update_source(db, clock, principal, source_id, data, services(request).guard)
        return f"Refresh rate of {source.name} saved."

    return _client_form(request, db, clock, csrf_token, client_id, action)


KlipField = Annotated[str, Form(max_length=200)]


@dataclass(frozen=True)
class KlipForm:
    """The klip builder's fields, as typed: checked by the same schema as the API's klips."""

    title: str
    kind: str
    datasource_id: str
    columns: dict[str, str]

    def klip(self) -> KlipIn:
        source = _amount(self.datasource_id)
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


@router.post("/clients/{client_id}/dashboards")
def add_dashboard(
    client_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    form: KlipFormDep,
    name: KlipField = "",
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        klips = [form.klip()] if form.title.strip() else []
        owner = client_owner(db, principal, client_id)
        data = DashboardCreate(name=name, klips=klips)
        dashboard = dashboards_service.create_dashboard(db, clock, principal, owner, data)
        return f"Dashboard {dashboard.name} created."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/dashboards/{dashboard_id}/klips")
def add_klip(
    client_id: PathId,
    dashboard_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    form: KlipFormDep,
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
        (view,) = dashboards_service.dashboard_views(db, [dashboard])
        klips = [
            KlipIn.model_validate({k: klip[k] for k in ("title", "kind", "datasource_id", "columns")})
            for klip in view["klips"]
        ]
        klips.append(form.klip())
        dashboards_service.update_dashboard(db, clock, principal, dashboard_id, DashboardUpdate(klips=klips))
        return f"Klip {form.title} added to {dashboard.name}."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@router.post("/clients/{client_id}/dashboards/{dashboard_id}/shares")
def share_dashboard(
    client_id: PathId,
    dashboard_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    user_ids: Annotated[list[int] | None, Form()] = None,
    csrf_token: CsrfField = "",
) -> Response:
    def action(principal: Principal) -> str:
        shared = dashboards_service.set_shares(db, clock, principal, dashboard_id, user_ids or [])
        return f"Shared with {len(shared)} user{'' if len(shared) == 1 else 's'}."

    return _client_form(request, db, clock, csrf_token, client_id, action)


@dataclass(frozen=True)
class LinkForm:
    name: str
    password: str
    # The sites that may embed the page, separated by spaces, commas or lines; empty: any site.
    allowed_origins: str

    def origins(self) -> list[str] | None:
        given = self.allowed_origins.replace(",", " ").split()
        return given or None


def link_form(
    name: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    allowed_origins: Annotated[str, Form(max_length=7000)] = "",
) -> LinkForm:
    return LinkForm(name, password, allowed_origins)


LinkFormDep = Annotated[LinkForm, Depends(link_form)]


def publish_action(
    request: Request, db: Session, clock: ClockDep, dashboard_id: int, form: LinkForm
) -> Callable[[Principal], str]:
    """Publishing a link, from the console or the portal: the URL is shown once, in the notice."""

    def action(principal: Principal) -> str:
        data = LinkCreate(name=form.name, password=form.password or None, allowed_origins=form.origins())
        link, token = links_service.create_link(db, clock, principal, dashboard_id, data)
        url = links_service.link_view(link, services(request).settings.base_url, token)["url"]
        return f"Published link {link.name} created: {url} (copy it now; it is shown only once)."

    return action


@router.post("/clients/{client_id}/dashboards/{dashboard_id}/links")
def publish(
    client_id: PathId,
    dashboard_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    form: LinkFormDep,
    csrf_token: CsrfField = "",
) -> Response:
    action = publish_action(request, db, clock, dashboard_id, form)
    return _client_form(request, db, clock, csrf_token, client_id, action)


def revoke_action(db: Session, clock: ClockDep, link_id: int) -> Callable[[Principal], str]:
    def action(principal: Principal) -> str:
        links_service.revoke_link(db, clock, principal, link_id)
        return "Published link revoked."

    return action


@router.post("/clients/{client_id}/links/{link_id}/revoke")
def revoke(
    client_id: PathId,
    link_id: PathId,
    request: Request,
    db: DbSession,
    clock: ClockDep,
    csrf_token: CsrfField = "",
) -> Response:
    return _client_form(request, db, clock, csrf_token, client_id, revoke_action(db, clock, link_id))

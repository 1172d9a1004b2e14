"""The partner's templates in the console (/partner/templates, SPEC §15): the list with each
template's copies and how many were changed by hand, a new one captured from a dashboard, and a
template's page: deploy it to clients (a dry run first, then exactly that selection confirmed),
its instances updated or detached, the template deleted.

Every form posts with the session's CSRF token and calls the same service function as the API;
a refusal comes back as its sentence. Signed in as a client (admin or view only), these pages
are not the visitor's: they go to the portal and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PathId, VaultDep, WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.clients import repository as clients_repo
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.db.template_models import Template
from tenantry.errors import InvalidInput
from tenantry.templates import repository as templates_repo
from tenantry.templates import service as templates
from tenantry.templates.schemas import DeployOut
from tenantry.vault import Vault
from tenantry.web.clients import STATUS_FILTERS, can_write, status_badge
from tenantry.web.pages import PageRoute, Visit, ascii_number, back, form_sender, page, visitor

router = APIRouter(prefix="/partner/templates", include_in_schema=False, route_class=PageRoute)

# The deploy form lists at most this many clients (the rest are reached with "all in status X").
PICKER_SIZE = 500
MAX_IDS = 10_000
SETTABLE = {k: v for k, v in STATUS_FILTERS.items() if k}
Ids = Annotated[list[str], Form(max_length=MAX_IDS)]


def ids_of(values: list[str], field: str = "client_ids") -> list[int]:
    """Ids as a form sends them (one field per checkbox): whole numbers, or a sentence."""
    found: list[int] = []
    for value in values:
        text = value.strip()
        number = ascii_number(text)
        if number is None or len(text) > 18:
            raise InvalidInput(f"{value[:40]!r} is not an id.", field=field)
        found.append(number)
    return list(dict.fromkeys(found))


# The list


def _templates(db: Session, visit: Visit) -> tuple[SignedIn, dict[str, Any]]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    rows = []
    for template in templates_repo.list_templates(db, principal.partner_id):
        copies = templates.instances(db, principal, template.id)
        rows.append(
            {
                "id": template.id,
                "name": template.name,
                "version": template.version,
                "instances": len(copies),
                "drifted": sum(1 for c in copies if c.drift),
            }
        )
    dashboards = dashboards_repo.visible_dashboards(db, principal, limit=PICKER_SIZE)
    names = {
        c.id: c.name
        for c in clients_repo.clients_of_partner(
            db, principal.partner_id, [d.client_id for d in dashboards if d.client_id is not None]
        ).values()
    }
    choices = [
        {
            "id": d.id,
            "label": f"{d.name} ({'yours' if d.client_id is None else names.get(d.client_id, 'a client')})",
        }
        for d in dashboards
    ]
    return signed_in, {"templates": rows, "dashboards": choices, "can_write": can_write(signed_in)}


@router.get("", response_class=HTMLResponse)
async def templates_page(request: Request, visit: Annotated[Visit, visitor()], work: WorkDep) -> Response:
    signed_in, context = await work(_templates, visit)
    return page(request, signed_in, "partner_templates.html", **context)


def _capture(db: Session, visit: Visit, clock: Clock, dashboard_id: list[str]) -> Template:
    principal = visit.console(db).principal
    chosen = ids_of(dashboard_id[:1], "dashboard_id")
    if not chosen:
        raise InvalidInput("Pick a dashboard to capture.", field="dashboard_id")
    return templates.capture_dashboard(db, clock, principal, chosen[0])


@router.post("/capture")
async def capture(
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/templates")],
    work: WorkDep,
    clock: ClockDep,
    dashboard_id: Annotated[list[str], Form(max_length=1)] = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    template = await work(_capture, visit, clock, dashboard_id)
    return back(request, f"/partner/templates/{template.id}", notice=f"Template {template.name} captured.")


# One template


def _client_rows(db: Session, signed_in: SignedIn, visit: Visit, status: str) -> list[dict[str, Any]]:
    """The clients to pick from: those in the effective status shown (as "All in" finds them,
    so a trial that has ended is listed under "Trial ended", never under "Trial")."""
    items = templates_repo.clients_in(
        db, signed_in.principal.partner_id, status or None, visit.now, PICKER_SIZE
    )
    return [{"id": c.id, "name": c.name, "badge": status_badge(c, visit.now)} for c in items]


def _template(db: Session, visit: Visit, template_id: int, status: str) -> tuple[SignedIn, dict[str, Any]]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    template = templates.readable_template(db, principal, template_id)
    copies = {i.client_id: i for i in templates.instances(db, principal, template.id)}
    held = templates_repo.instances_of(db, template.id)
    names = {
        c.id: c.name for c in clients_repo.clients_of_partner(db, principal.partner_id, list(copies)).values()
    }
    instances = [
        {
            "client_id": i.client_id,
            "client": names.get(i.client_id, f"Client {i.client_id}"),
            "version": i.version,
            "drift": copies[i.client_id].drift,
            "detached": i.detached,
            "dashboard_id": i.mapping["dashboards"][0] if i.mapping["dashboards"] else None,
        }
        for i in held
    ]
    body = template.body
    return signed_in, {
        "template": template,
        "sources": body.get("datasources", []),
        "dashboards": body.get("dashboards", []),
        "instances": instances,
        "clients": _client_rows(db, signed_in, visit, status),
        "status": status,
        "filters": STATUS_FILTERS,
        "settable": SETTABLE,
        "can_write": can_write(signed_in),
    }


@router.get("/{template_id}", response_class=HTMLResponse)
async def template_page(
    request: Request,
    template_id: PathId,
    visit: Annotated[Visit, visitor(heading="Template")],
    work: WorkDep,
    status: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    status = status if status in STATUS_FILTERS else ""
    signed_in, context = await work(_template, visit, template_id, status)
    return page(request, signed_in, "partner_template.html", **context)


@dataclass(frozen=True)
class Outcome:
    """A deployment's answer as the page shows it: per client, deployed or skipped and why."""

    rows: list[dict[str, Any]]
    client_ids: list[int]

    @property
    def deployed(self) -> int:
        return sum(1 for r in self.rows if r["ok"])


def _outcome(db: Session, partner_id: int, answer: DeployOut, client_ids: list[int]) -> Outcome:
    names = {c.id: c.name for c in clients_repo.clients_of_partner(db, partner_id, client_ids).values()}
    rows: list[dict[str, Any]] = [
        {
            "client_id": d.client_id,
            "client": names.get(d.client_id, ""),
            "ok": True,
            "code": None,
            "detail": None,
        }
        for d in answer.deployed
    ] + [
        {
            "client_id": s.client_id,
            "client": names.get(s.client_id, ""),
            "ok": False,
            "code": s.code,
            "detail": s.detail,
        }
        for s in answer.skipped
    ]
    order = {client_id: n for n, client_id in enumerate(client_ids)}
    rows.sort(key=lambda r: order.get(r["client_id"], len(order)))
    return Outcome(rows, client_ids)


def _chosen(db: Session, visit: Visit, partner_id: int, client_ids: list[str], all_status: str) -> list[int]:
    if all_status:
        if all_status not in SETTABLE:
            raise InvalidInput(f"Unknown status {all_status[:40]!r}.", field="all_status")
        # The effective status at the visit's clock: "Trial ended" is never stored.
        chosen = templates_repo.matching_clients(db, partner_id, all_status, None, visit.now)
        if not chosen:
            raise InvalidInput(f"No client is in {SETTABLE[all_status]}.", field="all_status")
        return chosen
    chosen = ids_of(client_ids)
    if not chosen:
        raise InvalidInput("Select at least one client, or all the clients in a status.", field="client_ids")
    return chosen


def _dry_run(
    db: Session,
    visit: Visit,
    clock: Clock,
    vault: Vault,
    template_id: int,
    client_ids: list[str],
    all_status: str,
) -> tuple[SignedIn, Template, Outcome]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    template = templates.readable_template(db, principal, template_id)
    chosen = _chosen(db, visit, principal.partner_id, client_ids, all_status)
    answer = templates.deploy(db, clock, principal, template.id, chosen, dry_run=True, vault=vault)
    return signed_in, template, _outcome(db, principal.partner_id, answer, chosen)


@router.post("/{template_id}/deploy", response_class=HTMLResponse)
async def deploy_dry_run(
    request: Request,
    template_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/partner/templates/{template_id}")],
    work: WorkDep,
    clock: ClockDep,
    vault: VaultDep,
    client_ids: Ids = [],  # noqa: B006 (FastAPI copies it)
    all_status: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """A dry run: what deploying would do to each client, with the button that does it."""
    signed_in, template, outcome = await work(
        _dry_run, visit, clock, vault, template_id, client_ids, all_status
    )
    return page(request, signed_in, "partner_template_deploy.html", template=template, outcome=outcome)


def _deploy(
    db: Session, visit: Visit, clock: Clock, vault: Vault, template_id: int, client_ids: list[str]
) -> Outcome:
    principal = visit.console(db).principal
    template = templates.readable_template(db, principal, template_id)
    chosen = ids_of(client_ids)
    if not chosen:
        raise InvalidInput("Select at least one client.", field="client_ids")
    answer = templates.deploy(db, clock, principal, template.id, chosen, dry_run=False, vault=vault)
    return _outcome(db, principal.partner_id, answer, chosen)


def _said(outcome: Outcome, done: str) -> str:
    count = outcome.deployed
    text = f"{done} {count} client{'' if count == 1 else 's'}."
    skipped = [r for r in outcome.rows if not r["ok"]]
    if skipped:
        text += " Skipped: " + "; ".join(
            f"{r['client'] or r['client_id']} ({r['code']}: {r['detail']})" for r in skipped
        )
    return text


@router.post("/{template_id}/deploy/confirm")
async def deploy_confirmed(
    request: Request,
    template_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/partner/templates/{template_id}")],
    work: WorkDep,
    clock: ClockDep,
    vault: VaultDep,
    client_ids: Ids = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    outcome = await work(_deploy, visit, clock, vault, template_id, client_ids)
    return visit.done(_said(outcome, "Deployed to"))


def _update(
    db: Session, visit: Visit, clock: Clock, template_id: int, client_ids: list[str], force: bool
) -> Outcome:
    principal = visit.console(db).principal
    chosen = ids_of(client_ids)
    if not chosen:
        raise InvalidInput("Select at least one instance to update.", field="client_ids")
    answer = templates.update_instances(db, clock, principal, template_id, chosen, force=force)
    return _outcome(db, principal.partner_id, answer, chosen)


@router.post("/{template_id}/update")
async def update_instances(
    template_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/partner/templates/{template_id}")],
    work: WorkDep,
    clock: ClockDep,
    client_ids: Ids = [],  # noqa: B006 (FastAPI copies it)
    force: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    outcome = await work(_update, visit, clock, template_id, client_ids, force == "yes")
    return visit.done(_said(outcome, "Updated the copies of"))


def _detach(db: Session, visit: Visit, clock: Clock, template_id: int, dashboard_id: list[str]) -> str:
    principal = visit.console(db).principal
    template = templates.readable_template(db, principal, template_id)
    chosen = ids_of(dashboard_id[:1], "dashboard_id")
    held = {d for i in templates_repo.instances_of(db, template.id) for d in i.mapping["dashboards"]}
    if not chosen or chosen[0] not in held:
        raise InvalidInput("That dashboard is not a copy of this template.", field="dashboard_id")
    detached = templates.detach(db, clock, principal, chosen[0])
    names = clients_repo.clients_of_partner(db, principal.partner_id, [detached.client_id])
    client = names.get(detached.client_id)
    return (
        f"The copy of {client.name if client else detached.client_id} is detached: it is never updated again."
    )


@router.post("/{template_id}/detach")
async def detach(
    template_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/partner/templates/{template_id}")],
    work: WorkDep,
    clock: ClockDep,
    dashboard_id: Annotated[list[str], Form(max_length=1)] = [],  # noqa: B006 (FastAPI copies it)
) -> Response:
    return visit.done(await work(_detach, visit, clock, template_id, dashboard_id))


def _delete(db: Session, visit: Visit, clock: Clock, template_id: int) -> str:
    principal = visit.console(db).principal
    name = templates.readable_template(db, principal, template_id).name
    templates.delete_template(db, clock, principal, template_id)
    return name


@router.post("/{template_id}/delete")
async def delete(
    request: Request,
    template_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/partner/templates/{template_id}")],
    work: WorkDep,
    clock: ClockDep,
) -> Response:
    name = await work(_delete, visit, clock, template_id)
    return back(
        request,
        "/partner/templates",
        notice=f"Template {name} deleted; what it deployed stays with the clients.",
    )

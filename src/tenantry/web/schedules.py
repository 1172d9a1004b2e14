"""Scheduled reports in the console and the portal: a dashboard's schedules with their next run
and last runs, a form to make one, and a button to delete one.

The portal's page (`/app/dashboards/{id}/schedules`) shows the client's dashboards to its admins
and editors and to partner users signed in as the client; the console's
(`/partner/dashboards/{id}/schedules`) shows any of the partner's dashboards. Both call the same
use cases as the API, which decide again who may schedule what to whom.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PathId, WorkDep
from tenantry.auth.principal import Principal
from tenantry.clock import Clock, is_timezone
from tenantry.dashboards import repository as dashboards_repo
from tenantry.partners import repository as partners_repo
from tenantry.reports import repository as reports_repo
from tenantry.reports import service
from tenantry.reports.schemas import ScheduleCreate
from tenantry.reports.slots import FREQUENCIES
from tenantry.web.pages import (
    VIEW_ONLY,
    PageRoute,
    Refused,
    Visit,
    ascii_number,
    form_sender,
    may_change,
    page,
    visitor,
)

router = APIRouter(include_in_schema=False, route_class=PageRoute)

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# The last runs shown beside each schedule.
RUNS_SHOWN = 5


def _portal_principal(db: Session, visit: Visit) -> tuple[Any, Principal]:
    signed_in, client = visit.portal(db)
    return signed_in, replace(signed_in.principal, client_id=client.id)


def _console_principal(db: Session, visit: Visit) -> tuple[Any, Principal]:
    signed_in = visit.console(db)
    return signed_in, signed_in.principal


def _view(db: Session, visit: Visit, dashboard_id: int, portal: bool) -> tuple[Any, dict[str, Any]]:
    signed_in, principal = (_portal_principal if portal else _console_principal)(db, visit)
    schedules, _total = service.schedules_of(db, principal, dashboard_id, 200, 0)
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
    users = reports_repo.account_users(db, dashboard.partner_id, dashboard.client_id)
    base = "/app" if portal else "/partner"
    can_write = may_change(signed_in) and principal.role in ("admin", "editor")
    timezone = partners_repo.days_timezone(db, dashboard.partner_id, dashboard.client_id)
    return signed_in, {
        "dashboard": dashboard,
        "base": base,
        "back": f"/app/dashboards/{dashboard.id}" if portal else _console_back(dashboard.client_id),
        "schedules": [
            (
                s,
                reports_repo.runs_of(db, s.id, RUNS_SHOWN, 0)[0],
                [users.get(i, "(removed)") for i in s.recipient_user_ids],
            )
            for s in schedules
        ],
        "users": sorted(users.items(), key=lambda u: u[1]),
        "can_write": can_write,
        "any_address": can_write and principal.is_partner,
        "weekdays": WEEKDAYS,
        "frequencies": FREQUENCIES,
        # Left empty (the partner's, as the API takes it) for a name a schedule may not be given.
        "timezone": timezone if is_timezone(timezone) else "",
    }


def _console_back(client_id: int | None) -> str:
    return f"/partner/clients/{client_id}" if client_id is not None else "/partner/dashboards"


@router.get("/app/dashboards/{dashboard_id}/schedules", response_class=HTMLResponse)
async def portal_schedules(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, visitor(heading="Not found")],
    work: WorkDep,
) -> Response:
    """A client dashboard's scheduled reports, in the portal."""
    signed_in, context = await work(_view, visit, dashboard_id, True)
    return page(request, signed_in, "schedules.html", **context)


@router.get("/partner/dashboards/{dashboard_id}/schedules", response_class=HTMLResponse)
async def console_schedules(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, visitor(heading="Not found")],
    work: WorkDep,
) -> Response:
    """A dashboard's scheduled reports, in the console (the partner's own or a client's)."""
    signed_in, context = await work(_view, visit, dashboard_id, False)
    return page(request, signed_in, "schedules.html", **context)


def _optional_int(value: str) -> int | None:
    """A form's whole number; None when empty, -1 (refused by the schema, naming the field) when
    it is no number of ASCII digits."""
    digits = value.strip()
    if not digits:
        return None
    number = ascii_number(digits)
    return -1 if number is None else number


def _create(
    db: Session,
    visit: Visit,
    clock: Clock,
    portal: bool,
    dashboard_id: int,
    form: dict[str, Any],
) -> str:
    signed_in, principal = (_portal_principal if portal else _console_principal)(db, visit)
    if not may_change(signed_in):
        raise Refused(VIEW_ONLY, 403)
    body = ScheduleCreate.model_validate(form)
    schedule = service.create_schedule(db, clock, principal, dashboard_id, body)
    when = schedule.next_run_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"The report is scheduled; it is first sent at {when}."


def _delete(db: Session, visit: Visit, clock: Clock, portal: bool, schedule_id: int) -> str:
    signed_in, principal = (_portal_principal if portal else _console_principal)(db, visit)
    if not may_change(signed_in):
        raise Refused(VIEW_ONLY, 403)
    service.delete_schedule(db, clock, principal, schedule_id)
    return "The scheduled report is deleted."


async def _form_of(request: Request) -> dict[str, Any]:
    """The create form as the API's body: empty fields left out, the users ticked, the addresses
    one a line or comma-separated."""
    sent = await request.form()
    text = {k: v for k, v in sent.items() if isinstance(v, str)}
    body: dict[str, Any] = {
        "frequency": text.get("frequency", ""),
        "time": text.get("time", ""),
        "format": text.get("format", "pdf"),
    }
    frequency = body["frequency"]
    if frequency == "weekly":
        body["weekday"] = _optional_int(text.get("weekday", ""))
    if frequency == "monthly":
        body["day_of_month"] = _optional_int(text.get("day_of_month", ""))
    for name in ("timezone", "subject"):
        if text.get(name, "").strip():
            body[name] = text[name].strip()
    user_ids = [v for v in sent.getlist("user_ids") if isinstance(v, str)]
    emails = [e.strip() for e in text.get("emails", "").replace(",", "\n").splitlines() if e.strip()]
    body["recipients"] = {"user_ids": [_optional_int(u) for u in user_ids], "emails": emails}
    return body


@router.post("/app/dashboards/{dashboard_id}/schedules")
async def portal_create(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/app/dashboards/{dashboard_id}/schedules")],
    work: WorkDep,
    clock: ClockDep,
) -> Response:
    form = await _form_of(request)
    return visit.done(await work(_create, visit, clock, True, dashboard_id, form))


@router.post("/partner/dashboards/{dashboard_id}/schedules")
async def console_create(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/dashboards/{dashboard_id}/schedules")],
    work: WorkDep,
    clock: ClockDep,
) -> Response:
    form = await _form_of(request)
    return visit.done(await work(_create, visit, clock, False, dashboard_id, form))


@router.post("/app/dashboards/{dashboard_id}/schedules/{schedule_id}/delete")
async def portal_delete(
    dashboard_id: PathId,
    schedule_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/app/dashboards/{dashboard_id}/schedules")],
    work: WorkDep,
    clock: ClockDep,
) -> Response:
    return visit.done(await work(_delete, visit, clock, True, schedule_id))


@router.post("/partner/dashboards/{dashboard_id}/schedules/{schedule_id}/delete")
async def console_delete(
    dashboard_id: PathId,
    schedule_id: PathId,
    visit: Annotated[Visit, form_sender(back_to="/partner/dashboards/{dashboard_id}/schedules")],
    work: WorkDep,
    clock: ClockDep,
) -> Response:
    return visit.done(await work(_delete, visit, clock, False, schedule_id))

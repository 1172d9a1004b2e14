"""The partner's own data sources in the console (/partner/datasources): the sources of no client,
for the partner's own dashboards, with the same forms and "Test connection" as a client's page.

A partner's own source belongs to no client, so `{{client...}}` placeholders have nothing to stand
for there: a test or a refresh says so in a sentence.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PathId, WorkDep, services
from tenantry.auth.sessions import SignedIn
from tenantry.clock import Clock
from tenantry.datasources import probe
from tenantry.datasources import service as sources_service
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.schemas import DataSourceOut
from tenantry.outbound import Guard
from tenantry.owners import partner_owner
from tenantry.vault import Vault
from tenantry.web.clients import can_write
from tenantry.web.pages import PageRoute, Visit, form_sender, page, visitor
from tenantry.web.sources import (
    BLANK_ROWS,
    REFRESH_CHOICES,
    SourceFields,
    SourceFieldsDep,
    change_settings,
    connection_test,
)

router = APIRouter(prefix="/partner/datasources", include_in_schema=False, route_class=PageRoute)

SourcesForm = Annotated[Visit, form_sender(back_to="/partner/datasources")]


def _sources(db: Session, visit: Visit) -> tuple[SignedIn, dict[str, Any]]:
    signed_in = visit.console(db)
    principal = signed_in.principal
    sources = list(sources_service.sources_of(db, principal, partner_owner(principal), 200, 0)[0])
    return signed_in, {
        "sources": [DataSourceOut.of(s) for s in sources],
        "refresh_choices": REFRESH_CHOICES,
        "blank_rows": BLANK_ROWS,
        "can_write": can_write(signed_in),
    }


@router.get("", response_class=HTMLResponse)
async def sources_page(request: Request, visit: Annotated[Visit, visitor()], work: WorkDep) -> Response:
    signed_in, context = await work(_sources, visit)
    return page(request, signed_in, "partner_sources.html", **context)


def _add(db: Session, visit: Visit, clock: Clock, guard: Guard, vault: Vault, form: SourceFields) -> str:
    principal = visit.partner_user(db).principal
    data = form.create()
    source = sources_service.create_source(db, clock, principal, partner_owner(principal), data, guard, vault)
    return f"Data source {source.name} added."


@router.post("")
async def add_source(
    request: Request, visit: SourcesForm, work: WorkDep, clock: ClockDep, form: SourceFieldsDep
) -> Response:
    svc = services(request)
    return visit.done(await work(_add, visit, clock, svc.guard, svc.vault, form))


def _test_request(
    db: Session, visit: Visit, vault: Vault, source_id: int | None, form: SourceFields
) -> tuple[SignedIn, SourceRequest]:
    signed_in = visit.partner_user(db)
    return signed_in, probe.prepare(db, signed_in.principal, form.probe(), vault=vault, source_id=source_id)


@router.post("/test", response_class=HTMLResponse)
async def test_source(
    request: Request,
    visit: Annotated[Visit, form_sender()],
    form: SourceFieldsDep,
    source: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> Response:
    """Fetch once with the form's settings and show the first rows or why not; nothing is saved."""
    return await connection_test(request, visit, _test_request, source, form)


def _change(
    db: Session, visit: Visit, clock: Clock, guard: Guard, vault: Vault, source_id: int, form: SourceFields
) -> str:
    principal = visit.partner_user(db).principal
    return change_settings(db, principal, clock, guard, vault, source_id, form)


@router.post("/{source_id}")
async def change_source(
    source_id: PathId,
    request: Request,
    visit: SourcesForm,
    work: WorkDep,
    clock: ClockDep,
    form: SourceFieldsDep,
) -> Response:
    svc = services(request)
    return visit.done(await work(_change, visit, clock, svc.guard, svc.vault, source_id, form))

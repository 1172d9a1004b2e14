"""The partner's clients (/partner/clients): the one list of them, searched, filtered and paged,
and the new-client form.

Every form posts with the session's CSRF token, calls the same service function as the API (so
the rules live in one place), and redirects back; a refusal comes back as its plain sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.api.deps import ClockDep, WorkDep
from tenantry.auth.sessions import SignedIn
from tenantry.clients import repository as clients_repo
from tenantry.clients import service as clients_service
from tenantry.clients.schemas import ClientCreate, Resources
from tenantry.clock import Clock
from tenantry.db.models import Client, Partner
from tenantry.partners import repository as partners_repo
from tenantry.policy import EffectiveStatus
from tenantry.text import refusal
from tenantry.web.pages import (
    STATUS_WORDS,
    PageRoute,
    Visit,
    Visitor,
    amount,
    ascii_number,
    back,
    form_sender,
    page,
)
from tenantry.web.plan import RESOURCE_WORDS, pool_lines

router = APIRouter(prefix="/partner", include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
STATUS_FILTERS = {
    "": "All statuses",
    "setup": "Setup",
    "trial": "Trial",
    "trial_expired": "Trial ended",
    "active": "Active",
    "disabled": "Disabled",
}
Text = Annotated[str, Form(max_length=5000)]


def can_write(signed_in: SignedIn) -> bool:
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


@dataclass(frozen=True)
class ClientsPage:
    signed_in: SignedIn
    partner: Partner
    rows: list[dict[str, Any]]
    total: int


def _clients(db: Session, visit: Visit, status: str, q: str, page_number: int) -> ClientsPage | None:
    """A page of the clients (None when the search itself is refused)."""
    signed_in = visit.console(db)
    if refusal(q) is not None:
        return None
    partner = partners_repo.get_partner(db, signed_in.principal.partner_id)
    # The same query as GET /api/1/clients: one indexed page and a counter or a count.
    items, total = clients_repo.list_clients(
        db,
        partner,
        now=visit.now,
        status=status or None,
        external_id=None,
        q=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    rows = [
        {
            "id": c.id,
            "name": c.name,
            "external_id": c.external_id,
            "badge": status_badge(c, visit.now),
            "allocation": clients_repo.allocation_of(c),
            "usage": clients_repo.usage_of(c),
            "last_sign_in": c.last_sign_in,
        }
        for c in items
    ]
    return ClientsPage(signed_in, partner, rows, total)


@router.get("/clients", response_class=HTMLResponse)
async def clients_list(
    request: Request,
    visit: Visitor,
    work: WorkDep,
    status: Annotated[str, Query(max_length=20)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page_number: Annotated[str, Query(alias="page", max_length=20)] = "1",
) -> Response:
    status = status if status in STATUS_FILTERS else ""
    # A hand-edited address gets the first page, not an error.
    asked = ascii_number(page_number)
    number = asked if asked is not None and 0 < asked < 10**7 else 1
    found = await work(_clients, visit, status, q, number)
    if found is None:
        return back(request, "/partner/clients", error=f"Search: {refusal(q)}.")
    pages = max(1, math.ceil(found.total / PAGE_SIZE))

    def link(to_page: int) -> str:
        query = {k: v for k, v in {"status": status, "q": q, "page": str(to_page)}.items() if v}
        return "/partner/clients?" + urlencode(query)

    return page(
        request,
        found.signed_in,
        "partner_clients.html",
        partner=found.partner,
        clients=found.rows,
        total=found.total,
        first=(number - 1) * PAGE_SIZE + 1 if found.rows else 0,
        last=(number - 1) * PAGE_SIZE + len(found.rows),
        previous=link(number - 1) if number > 1 else None,
        next=link(number + 1) if number < pages else None,
        status=status,
        q=q,
        filters=STATUS_FILTERS,
        can_write=can_write(found.signed_in),
    )


def _new_client(db: Session, visit: Visit) -> tuple[SignedIn, list[dict[str, Any]]]:
    signed_in = visit.console(db)
    return signed_in, pool_lines(partners_repo.get_partner(db, signed_in.principal.partner_id))


@router.get("/clients/new", response_class=HTMLResponse)
async def new_client_form(request: Request, visit: Visitor, work: WorkDep) -> Response:
    signed_in, pool = await work(_new_client, visit)
    return page(
        request,
        signed_in,
        "partner_client_new.html",
        pool=pool,
        resource_words=RESOURCE_WORDS,
        can_write=can_write(signed_in),
    )


@dataclass(frozen=True)
class AllocationForm:
    """The allocation fields as typed; an empty field leaves that resource as it is."""

    given: dict[str, str]

    def resources(self) -> Resources:
        amounts = {resource: amount(value) for resource, value in self.given.items()}
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


@dataclass(frozen=True)
class NewClient:
    name: str
    description: str
    external_id: str
    status: str
    allocation: AllocationForm


def _create(db: Session, visit: Visit, clock: Clock, form: NewClient) -> Client:
    signed_in = visit.partner_user(db)
    data = ClientCreate(
        name=form.name,
        description=form.description,
        external_id=form.external_id.strip() or None,
        status=form.status,  # type: ignore[arg-type]
        resources=form.allocation.resources(),
    )
    return clients_service.create_client(db, clock, signed_in.principal, data)


@router.post("/clients")
async def create_client(
    request: Request,
    visit: Annotated[Visit, form_sender(back_to="/partner/clients/new")],
    work: WorkDep,
    clock: ClockDep,
    allocation: AllocationFormDep,
    name: Text = "",
    description: Text = "",
    external_id: Text = "",
    status: Annotated[str, Form(max_length=20)] = "setup",
) -> Response:
    client = await work(_create, visit, clock, NewClient(name, description, external_id, status, allocation))
    return back(request, f"/partner/clients/{client.id}", notice=f"Client {client.name} created.")

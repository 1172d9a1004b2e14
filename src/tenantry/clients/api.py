"""Clients endpoints (SPEC §9). Each authenticates, calls one service function, returns a schema."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from tenantry.api.deps import (
    Caller,
    ClockDep,
    DbSession,
    MeterDep,
    PageDep,
    PartnerCaller,
    PathId,
    WorkDep,
    caller_of,
    services,
)
from tenantry.clients import repository as repo
from tenantry.clients import service
from tenantry.clients.schemas import (
    ActivationCheck,
    ClientCreate,
    ClientList,
    ClientOut,
    ClientUpdate,
    StatusChangeList,
    StatusChangeOut,
)
from tenantry.db.models import Client, StatusChange
from tenantry.fields import OneLine
from tenantry.meter.calendar import MeterCalendar
from tenantry.meter.service import Meter
from tenantry.partners import repository as partners_repo

router = APIRouter(prefix="/api/1/clients", tags=["clients"])


def _out(db: Session, meter: Meter, client: Client, now: datetime) -> ClientOut:
    """A client with today's API calls, counted on the meter's day."""
    calendar = partners_repo.partner_meter_calendar(db, client.partner_id)
    calls = meter.client_calls_today([client.id], calendar, now)[client.id]
    return ClientOut.model_validate(service.client_view(client, now, api_calls_today=calls))


StatusFilter = Literal["setup", "trial", "trial_expired", "active", "disabled"]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientOut)
async def create_client(
    body: ClientCreate, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> ClientOut:
    """Create a client account (Setup by default; Trial or Active when asked and allowed)."""
    client = await work(service.create_client, clock, caller, body)
    return ClientOut.model_validate(service.client_view(client, clock.now()))


@router.get("", response_model=ClientList)
async def list_clients(
    request: Request,
    db: DbSession,
    clock: ClockDep,
    caller: PartnerCaller,
    page: PageDep,
    meter: MeterDep,
    status: Annotated[
        StatusFilter | None,
        Query(description="Stored status; `trial_expired` selects trials whose end has passed."),
    ] = None,
    external_id: Annotated[str | None, Query(max_length=200), OneLine] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Search in name and external id."), OneLine
    ] = None,
) -> dict[str, Any]:
    """List the partner's clients, oldest first."""
    # The hot read paths are async with all their I/O in one worker-thread hop.
    now = clock.now()

    def work() -> dict[str, Any]:
        partner = partners_repo.get_partner(db, caller.partner_id)
        items, total = repo.list_clients(
            db,
            partner,
            now=now,
            status=status,
            external_id=external_id,
            q=q,
            limit=page.limit,
            offset=page.offset,
        )
        calls = meter.client_calls_today([c.id for c in items], MeterCalendar.of(partner), now)
        return {
            "items": [service.client_view(c, now, api_calls_today=calls[c.id]) for c in items],
            "total": total,
            "limit": page.limit,
            "offset": page.offset,
        }

    return await services(request).read(work)


@router.get("/{client_id}", response_model=ClientOut)
async def get_client(client_id: PathId, request: Request) -> dict[str, Any]:
    """One client, with its effective status, trial clock, allocation and usage."""
    # The hottest read of the API: prepared statements, read without leaving the event loop.
    svc, caller = services(request), caller_of(request)
    now = svc.clock.now()
    async with svc.reads.connection() as reads:
        client = await repo.read_client_async(reads, caller, client_id)
        calendar = repo.meter_calendar_of(client)
        calls = await svc.meter.client_calls_today_async([client.id], calendar, now, reads)
    return service.client_view(client, now, api_calls_today=calls[client.id])


@router.patch("/{client_id}", response_model=ClientOut)
async def update_client(
    client_id: PathId,
    body: ClientUpdate,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    meter: MeterDep,
) -> ClientOut:
    """Change a client; a status change and resources in one request apply together or not at all."""

    def update(db: Session) -> ClientOut:
        return _out(db, meter, service.update_client(db, clock, caller, client_id, body), clock.now())

    return await work(update)


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(client_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller) -> Response:
    """Remove the client and everything in it (admins only)."""
    await work(service.delete_client, clock, caller, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{client_id}/activation-check", response_model=ActivationCheck)
async def activation_check(client_id: PathId, work: WorkDep, caller: PartnerCaller) -> ActivationCheck:
    """What stands between the client and Active, without changing anything."""
    return ActivationCheck.model_validate(await work(service.activation_check, caller, client_id))


@router.post("/{client_id}/extend-trial", response_model=ClientOut)
async def extend_trial(
    client_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller, meter: MeterDep
) -> ClientOut:
    """Extend the trial once, strictly before the first trial period ends."""

    def extend(db: Session) -> ClientOut:
        return _out(db, meter, service.extend_trial(db, clock, caller, client_id), clock.now())

    return await work(extend)


@router.get("/{client_id}/history", response_model=StatusChangeList)
async def history(client_id: PathId, work: WorkDep, caller: PartnerCaller, page: PageDep) -> StatusChangeList:
    """The client's status changes, oldest first."""

    def read(db: Session) -> tuple[Sequence[StatusChange], int]:
        client = repo.get_client(db, caller, client_id)
        return repo.status_history(db, client.partner_id, client.id, page.limit, page.offset)

    items, total = await work(read)
    return StatusChangeList(
        items=[
            StatusChangeOut(
                id=c.id, **{"from": c.from_status}, to=c.to_status, at=c.at, actor=c.actor, reason=c.reason
            )
            for c in items
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )

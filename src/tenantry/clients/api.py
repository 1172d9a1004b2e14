"""Clients endpoints (SPEC §9). Each authenticates, calls one service function, returns a schema."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from fastapi.concurrency import run_in_threadpool

from tenantry.api.deps import Caller, ClockDep, DbSession, PageDep, PartnerCaller
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

router = APIRouter(prefix="/api/1/clients", tags=["clients"])

StatusFilter = Literal["setup", "trial", "trial_expired", "active", "disabled"]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientOut)
def create_client(body: ClientCreate, db: DbSession, clock: ClockDep, caller: PartnerCaller) -> ClientOut:
    """Create a client account (Setup by default; Trial or Active when asked and allowed)."""
    client = service.create_client(db, clock, caller, body)
    return ClientOut.model_validate(service.client_view(client, clock.now()))


@router.get("", response_model=ClientList)
async def list_clients(
    db: DbSession,
    clock: ClockDep,
    caller: PartnerCaller,
    page: PageDep,
    status: Annotated[
        StatusFilter | None,
        Query(description="Stored status; `trial_expired` selects trials whose end has passed."),
    ] = None,
    external_id: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Search in name and external id.")] = None,
) -> dict[str, Any]:
    """List the partner's clients, oldest first."""
    # The hot read paths are async with their database work in one worker-thread hop.
    now = clock.now()

    def work() -> dict[str, Any]:
        partner = repo.get_partner(db, caller.partner_id)
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
        return {
            "items": [service.client_view(c, now) for c in items],
            "total": total,
            "limit": page.limit,
            "offset": page.offset,
        }

    return await run_in_threadpool(work)


@router.get("/{client_id}", response_model=ClientOut)
async def get_client(client_id: int, db: DbSession, clock: ClockDep, caller: Caller) -> dict[str, Any]:
    """One client, with its effective status, trial clock, allocation and usage."""
    now = clock.now()
    return await run_in_threadpool(lambda: service.client_view(repo.get_client(db, caller, client_id), now))


@router.patch("/{client_id}", response_model=ClientOut)
def update_client(
    client_id: int, body: ClientUpdate, db: DbSession, clock: ClockDep, caller: PartnerCaller
) -> ClientOut:
    """Change a client; a status change and resources in one request apply together or not at all."""
    client = service.update_client(db, clock, caller, client_id, body)
    return ClientOut.model_validate(service.client_view(client, clock.now()))


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_client(client_id: int, db: DbSession, clock: ClockDep, caller: PartnerCaller) -> Response:
    """Remove the client and everything in it (admins only)."""
    service.delete_client(db, clock, caller, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{client_id}/activation-check", response_model=ActivationCheck)
def activation_check(client_id: int, db: DbSession, caller: PartnerCaller) -> ActivationCheck:
    """What stands between the client and Active, without changing anything."""
    return ActivationCheck.model_validate(service.activation_check(db, caller, client_id))


@router.post("/{client_id}/extend-trial", response_model=ClientOut)
def extend_trial(client_id: int, db: DbSession, clock: ClockDep, caller: Caller) -> ClientOut:
    """Extend the trial once, strictly before the first trial period ends."""
    client = service.extend_trial(db, clock, caller, client_id)
    return ClientOut.model_validate(service.client_view(client, clock.now()))


@router.get("/{client_id}/history", response_model=StatusChangeList)
def history(client_id: int, db: DbSession, caller: PartnerCaller, page: PageDep) -> StatusChangeList:
    """The client's status changes, oldest first."""
    client = repo.get_client(db, caller, client_id)
    items, total = repo.status_history(db, client.id, page.limit, page.offset)
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

"""Data-source endpoints (SPEC §9). Each authenticates, calls one use case, returns a schema."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from sqlalchemy.orm import Session

from tenantry.api.deps import (
    Caller,
    ClockDep,
    GuardDep,
    Page,
    PageDep,
    PartnerCaller,
    PathId,
    VaultDep,
    WorkDep,
)
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.datasources import service
from tenantry.datasources.schemas import (
    DataSourceCreate,
    DataSourceList,
    DataSourceOut,
    DataSourceUpdate,
    Queued,
    RowsOut,
)
from tenantry.outbound import Guard
from tenantry.owners import Owner, client_owner, partner_owner
from tenantry.text import scrub_rows
from tenantry.vault import Vault

router = APIRouter(prefix="/api/1", tags=["data sources"])


def _owner(db: Session, caller: Principal, client_id: int | None) -> Owner:
    """A client's account, or the partner's own when no client is named."""
    return partner_owner(caller) if client_id is None else client_owner(db, caller, client_id)


def _create(
    db: Session,
    clock: Clock,
    caller: Principal,
    client_id: int | None,
    body: DataSourceCreate,
    guard: Guard,
    vault: Vault,
) -> DataSourceOut:
    owner = _owner(db, caller, client_id)
    return DataSourceOut.of(service.create_source(db, clock, caller, owner, body, guard, vault))


def _list(db: Session, caller: Principal, client_id: int | None, page: Page) -> DataSourceList:
    items, total = service.sources_of(db, caller, _owner(db, caller, client_id), page.limit, page.offset)
    return DataSourceList(
        items=[DataSourceOut.of(s) for s in items], total=total, limit=page.limit, offset=page.offset
    )


def _get(db: Session, caller: Principal, source_id: int) -> DataSourceOut:
    return DataSourceOut.of(service.readable_source(db, caller, source_id))


def _update(
    db: Session,
    clock: Clock,
    caller: Principal,
    source_id: int,
    body: DataSourceUpdate,
    guard: Guard,
    vault: Vault,
) -> DataSourceOut:
    return DataSourceOut.of(service.update_source(db, clock, caller, source_id, body, guard, vault))


@router.post(
    "/clients/{client_id}/datasources", status_code=status.HTTP_201_CREATED, response_model=DataSourceOut
)
async def create_client_source(
    client_id: PathId,
    body: DataSourceCreate,
    work: WorkDep,
    clock: ClockDep,
    caller: Caller,
    guard: GuardDep,
    vault: VaultDep,
) -> DataSourceOut:
    """Add a data source to a client: `url` (CSV, JSON or xlsx over HTTP(S)), `sql` (a query on a
    PostgreSQL or MySQL database) or `inline` rows. Secrets are never shown again ("*****")."""
    return await work(_create, clock, caller, client_id, body, guard, vault)


@router.get("/clients/{client_id}/datasources", response_model=DataSourceList)
async def list_client_sources(
    client_id: PathId, work: WorkDep, caller: Caller, page: PageDep
) -> DataSourceList:
    """A client's data sources, oldest first."""
    return await work(_list, caller, client_id, page)


@router.post("/partner/datasources", status_code=status.HTTP_201_CREATED, response_model=DataSourceOut)
async def create_partner_source(
    body: DataSourceCreate,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    guard: GuardDep,
    vault: VaultDep,
) -> DataSourceOut:
    """Add a data source to the partner's own account."""
    return await work(_create, clock, caller, None, body, guard, vault)


@router.get("/partner/datasources", response_model=DataSourceList)
async def list_partner_sources(work: WorkDep, caller: PartnerCaller, page: PageDep) -> DataSourceList:
    """The partner's own data sources, oldest first."""
    return await work(_list, caller, None, page)


@router.get("/datasources/{source_id}", response_model=DataSourceOut)
async def get_source(source_id: PathId, work: WorkDep, caller: Caller) -> DataSourceOut:
    """One data source, with its refresh state and the size of its last good snapshot."""
    return await work(_get, caller, source_id)


@router.patch("/datasources/{source_id}", response_model=DataSourceOut)
async def update_source(
    source_id: PathId,
    body: DataSourceUpdate,
    work: WorkDep,
    clock: ClockDep,
    caller: Caller,
    guard: GuardDep,
    vault: VaultDep,
) -> DataSourceOut:
    """Change a data source's name, settings or refresh rate, or replace an inline source's rows.
    A secret sent as "*****" keeps its stored value; moving a source to another server needs its
    secrets sent again."""
    return await work(_update, clock, caller, source_id, body, guard, vault)


@router.delete("/datasources/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_source(source_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller) -> Response:
    """Remove a data source that no klip shows."""
    await work(service.delete_source, clock, caller, source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/datasources/{source_id}/rows", response_model=RowsOut)
async def get_rows(source_id: PathId, work: WorkDep, caller: Caller, page: PageDep) -> RowsOut:
    """The rows of the last good snapshot, a page at a time."""
    rows = await work(service.read_rows, caller, source_id, page.offset, page.limit)
    return RowsOut(
        # Stored rows are scrubbed on ingest; scrubbing the page again costs little and keeps
        # any row written another way from breaking the answer.
        items=scrub_rows(rows.items),
        total=rows.total,
        limit=page.limit,
        offset=page.offset,
        version=rows.version,
    )


@router.post("/datasources/{source_id}/refresh", status_code=status.HTTP_202_ACCEPTED, response_model=Queued)
async def queue_refresh(source_id: PathId, work: WorkDep, clock: ClockDep, caller: Caller) -> Queued:
    """Queue a refresh of a url data source (refused while disabled or in an expired trial)."""
    await work(service.queue_refresh, clock, caller, source_id)
    return Queued(queued=True)

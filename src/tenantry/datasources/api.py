"""Data-source endpoints (SPEC §9). Each authenticates, calls one service function, returns a schema."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from tenantry.api.deps import Caller, ClockDep, DbSession, GuardDep, PageDep, PartnerCaller, PathId
from tenantry.auth.principal import Principal
from tenantry.datasources import service
from tenantry.datasources.schemas import (
    DataSourceCreate,
    DataSourceList,
    DataSourceOut,
    DataSourceUpdate,
    Queued,
    RowsOut,
)
from tenantry.owners import Owner, client_owner, partner_owner
from tenantry.text import scrub_rows

router = APIRouter(prefix="/api/1", tags=["data sources"])


def _out(source: object) -> DataSourceOut:
    return DataSourceOut.model_validate(service.source_view(source))  # type: ignore[arg-type]


def _list(db: DbSession, caller: Principal, owner: Owner, page: PageDep) -> DataSourceList:
    items, total = service.sources_of(db, caller, owner, page.limit, page.offset)
    return DataSourceList(items=[_out(s) for s in items], total=total, limit=page.limit, offset=page.offset)


@router.post(
    "/clients/{client_id}/datasources", status_code=status.HTTP_201_CREATED, response_model=DataSourceOut
)
def create_client_source(
    client_id: PathId, body: DataSourceCreate, db: DbSession, clock: ClockDep, caller: Caller, guard: GuardDep
) -> DataSourceOut:
    """Add a data source to a client: `url` (CSV or JSON over HTTP(S)) or `inline` rows."""
    return _out(service.create_source(db, clock, caller, client_owner(db, caller, client_id), body, guard))


@router.get("/clients/{client_id}/datasources", response_model=DataSourceList)
def list_client_sources(client_id: PathId, db: DbSession, caller: Caller, page: PageDep) -> DataSourceList:
    """A client's data sources, oldest first."""
    return _list(db, caller, client_owner(db, caller, client_id), page)


@router.post("/partner/datasources", status_code=status.HTTP_201_CREATED, response_model=DataSourceOut)
def create_partner_source(
    body: DataSourceCreate, db: DbSession, clock: ClockDep, caller: PartnerCaller, guard: GuardDep
) -> DataSourceOut:
    """Add a data source to the partner's own account."""
    return _out(service.create_source(db, clock, caller, partner_owner(caller), body, guard))


@router.get("/partner/datasources", response_model=DataSourceList)
def list_partner_sources(db: DbSession, caller: PartnerCaller, page: PageDep) -> DataSourceList:
    """The partner's own data sources, oldest first."""
    return _list(db, caller, partner_owner(caller), page)


@router.get("/datasources/{source_id}", response_model=DataSourceOut)
def get_source(source_id: PathId, db: DbSession, caller: Caller) -> DataSourceOut:
    """One data source, with its refresh state and the size of its last good snapshot."""
    return _out(service.readable_source(db, caller, source_id))


@router.patch("/datasources/{source_id}", response_model=DataSourceOut)
def update_source(
    source_id: PathId, body: DataSourceUpdate, db: DbSession, clock: ClockDep, caller: Caller, guard: GuardDep
) -> DataSourceOut:
    """Rename a data source, change its URL or refresh rate, or replace an inline source's rows."""
    return _out(service.update_source(db, clock, caller, source_id, body, guard))


@router.delete("/datasources/{source_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_source(source_id: PathId, db: DbSession, clock: ClockDep, caller: Caller) -> Response:
    """Remove a data source that no klip shows."""
    service.delete_source(db, clock, caller, source_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/datasources/{source_id}/rows", response_model=RowsOut)
def get_rows(source_id: PathId, db: DbSession, caller: Caller, page: PageDep) -> RowsOut:
    """The rows of the last good snapshot, a page at a time."""
    rows = service.read_rows(db, caller, source_id, page.offset, page.limit)
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
def queue_refresh(source_id: PathId, db: DbSession, clock: ClockDep, caller: Caller) -> Queued:
    """Queue a refresh of a url data source (refused while disabled or in an expired trial)."""
    service.queue_refresh(db, clock, caller, source_id)
    return Queued(queued=True)

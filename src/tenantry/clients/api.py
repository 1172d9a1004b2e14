"""Clients endpoints (SPEC §9). Each authenticates, calls one use case, returns a schema."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tenantry.api.deps import (
    Caller,
    ClockDep,
    MailerDep,
    PageDep,
    PartnerCaller,
    PathId,
    Services,
    SettingsDep,
    VaultDep,
    WorkDep,
    caller_of,
    read_with_key,
    services,
)
from tenantry.api.lean import JsonAnswer
from tenantry.auth.principal import Principal
from tenantry.clients import bulk, properties, service
from tenantry.clients import repository as repo
from tenantry.clients.schemas import (
    ActivationCheck,
    AuditRecordList,
    AuditRecordOut,
    BulkStatus,
    BulkStatusLine,
    BulkStatusOut,
    ClientCreate,
    ClientList,
    ClientOut,
    ClientUpdate,
    ImportJson,
    ImportOut,
    Properties,
    StatusChangeList,
    StatusChangeOut,
    client_json,
)
from tenantry.clock import Clock
from tenantry.db.models import Client
from tenantry.errors import InvalidInput
from tenantry.fields import OneLine, nfc
from tenantry.meter.calendar import MeterCalendar
from tenantry.meter.service import client_scope
from tenantry.policy import Status
from tenantry.text import csv_records
from tenantry.users.service import Inviter

router = APIRouter(prefix="/api/1/clients", tags=["clients"])


async def _calls_today(
    svc: Services, client_ids: Sequence[int], calendar: MeterCalendar, now: datetime
) -> dict[int, int]:
    """Today's API calls of these clients, counted on the meter's day, from the event loop."""
    if not client_ids:
        return {}
    async with svc.reads.connection() as reads:
        return await svc.meter.client_calls_today_async(client_ids, calendar, now, reads)


async def _out(svc: Services, found: tuple[Client, MeterCalendar]) -> ClientOut:
    """A client with today's API calls."""
    client, calendar = found
    now = svc.clock.now()
    calls = await _calls_today(svc, [client.id], calendar, now)
    return ClientOut.of(client, now, api_calls_today=calls[client.id])


def import_rows(body: bytes, content_type: str) -> list[tuple[int, dict[str, object]]]:
    """The rows of an import, numbered as a person finds them: the CSV's line in the file (the
    header is line 1), or a JSON row's position from 1. An unknown column refuses the file."""
    media = content_type.split(";")[0].strip().lower()
    if media == "text/csv":
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("The CSV file is not UTF-8 text.", field="body") from None
        rows: list[tuple[int, dict[str, object]]] = []
        try:
            records = csv_records(text)
            _, header = next(records, (1, []))
            columns = [c.strip() for c in header]
            bulk.check_columns(columns)
            for line, cells in records:
                if len(cells) > len(columns):
                    raise InvalidInput(
                        f"Line {line} has more cells than the header has columns.", field="body"
                    )
                if any(cell.strip() for cell in cells):  # lines of blank cells are not clients
                    if len(rows) == bulk.MAX_ROWS:
                        raise InvalidInput(f"An import holds at most {bulk.MAX_ROWS} lines.", field="rows")
                    padded: list[str | None] = [*cells, *[None] * (len(columns) - len(cells))]
                    rows.append((line, dict(zip(columns, padded, strict=True))))
        except csv.Error as error:
            raise InvalidInput(f"The CSV file cannot be read: {error}.", field="body") from None
        return rows
    if media == "application/json":
        try:
            parsed = ImportJson.model_validate_json(body)
        except ValidationError as error:
            raise RequestValidationError(error.errors()) from None
        for row in parsed.rows:
            bulk.check_columns(list(row))
        return [(number, dict(row)) for number, row in enumerate(parsed.rows, start=1)]
    raise InvalidInput("Send the file as text/csv, or application/json {rows: [...]}.", field="content-type")


@router.post(
    "/import",
    response_model=ImportOut,
    # `code` and `detail` only on refused lines, `client_id` only once created: as in a refusal.
    response_model_exclude_none=True,
    status_code=status.HTTP_201_CREATED,
    responses={200: {"description": "A dry run's answer."}},
    openapi_extra={
        "requestBody": {
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": ImportJson.model_json_schema()},
            },
            "required": True,
        }
    },
)
async def import_clients(
    request: Request,
    response: Response,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
    mailer: MailerDep,
    settings: SettingsDep,
    vault: VaultDep,
    dry_run: bool = False,
) -> ImportOut:
    """Create clients from a CSV file or JSON rows, all of them or none (422 naming each bad line)."""
    rows = import_rows(await request.body(), request.headers.get("content-type", ""))
    inviter = Inviter(mailer, settings.base_url)
    result = await work(bulk.import_clients, clock, caller, inviter, rows, dry_run=dry_run, vault=vault)
    if dry_run:
        response.status_code = status.HTTP_200_OK
    return ImportOut.model_validate(result.out())


@router.post("/bulk-status", response_model=BulkStatusOut)
async def bulk_status(
    body: BulkStatus, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> BulkStatusOut:
    """Move every listed client to one status, or none (the first refusal names its client)."""
    outcomes, pool_after = await work(
        bulk.bulk_status,
        clock,
        caller,
        body.client_ids,
        Status(body.status),
        body.reason,
        dry_run=body.dry_run,
    )
    return BulkStatusOut(
        dry_run=body.dry_run,
        clients=[BulkStatusLine.model_validate(o.out()) for o in outcomes],
        pool_after=pool_after,
    )


StatusFilter = Literal["setup", "trial", "trial_expired", "active", "disabled"]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientOut)
async def create_client(
    body: ClientCreate, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> ClientOut:
    """Create a client account (Setup by default; Trial or Active when asked and allowed)."""
    client = await work(service.create_client, clock, caller, body)
    return ClientOut.of(client, clock.now())


@router.get("", response_model=ClientList)
async def list_clients(
    request: Request,
    work: WorkDep,
    caller: PartnerCaller,
    page: PageDep,
    status: Annotated[
        StatusFilter | None,
        Query(description="Stored status; `trial_expired` selects trials whose end has passed."),
    ] = None,
    external_id: Annotated[str | None, Query(max_length=200), OneLine] = None,
    q: Annotated[
        str | None, Query(max_length=200, description="Search in name and external id."), OneLine
    ] = None,
) -> ClientList:
    """List the partner's clients, oldest first."""
    svc = services(request)
    now = svc.clock.now()
    items, total, calendar = await work(
        service.client_page,
        caller,
        now,
        status=status,
        external_id=None if external_id is None else nfc(external_id),
        q=q,
        limit=page.limit,
        offset=page.offset,
    )
    calls = await _calls_today(svc, [c.id for c in items], calendar, now)
    return ClientList(
        items=[ClientOut.of(c, now, api_calls_today=calls[c.id]) for c in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{client_id}", response_model=ClientOut)
async def get_client(client_id: PathId, request: Request) -> JsonAnswer:
    """One client, with its effective status, trial clock, allocation and usage."""
    # The hottest read of the API: prepared statements, read without leaving the event loop.
    svc, caller = services(request), caller_of(request)
    now = svc.clock.now()
    row = read_with_key(request, repo.CLIENT_WITH_KEY, client_id=client_id, scope=client_scope(client_id))
    if row is not None:  # read in the API key's statement, with the database counter's latest day
        client = repo.client_read_with_key(row, caller, client_id)
    else:
        async with svc.reads.connection() as reads:
            client = await repo.read_client_async(reads, caller, client_id)
    calendar = repo.meter_calendar_of(client)
    calls = None
    # A client user's own call was counted for this client after the key's statement: read again.
    if row is not None and caller.client_id is None:
        calls = svc.meter.calls_today_beside(row.latest_counted_day, row.latest_counted_calls, calendar, now)
    if calls is None:
        # The meter reads the database only for a count Redis cannot give (a connection when it does).
        calls = (await svc.meter.client_calls_today_async([client.id], calendar, now, svc.reads))[client.id]
    return JsonAnswer(client_json(client, now, calls))


def _update(
    db: Session, clock: Clock, caller: Principal, client_id: int, body: ClientUpdate
) -> tuple[Client, MeterCalendar]:
    return service.with_calendar(db, service.update_client(db, clock, caller, client_id, body))


@router.patch("/{client_id}", response_model=ClientOut)
async def update_client(
    client_id: PathId,
    body: ClientUpdate,
    request: Request,
    work: WorkDep,
    clock: ClockDep,
    caller: PartnerCaller,
) -> ClientOut:
    """Change a client; a status change and resources in one request apply together or not at all."""
    return await _out(services(request), await work(_update, clock, caller, client_id, body))


@router.delete("/{client_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_client(client_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller) -> Response:
    """Remove the client and everything in it (admins only)."""
    await work(service.delete_client, clock, caller, client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{client_id}/activation-check", response_model=ActivationCheck)
async def activation_check(client_id: PathId, work: WorkDep, caller: PartnerCaller) -> ActivationCheck:
    """What stands between the client and Active, without changing anything."""
    return ActivationCheck.model_validate(await work(service.activation_check, caller, client_id))


def _extend(db: Session, clock: Clock, caller: Principal, client_id: int) -> tuple[Client, MeterCalendar]:
    return service.with_calendar(db, service.extend_trial(db, clock, caller, client_id))


@router.post("/{client_id}/extend-trial", response_model=ClientOut)
async def extend_trial(
    client_id: PathId, request: Request, work: WorkDep, clock: ClockDep, caller: Caller
) -> ClientOut:
    """Extend the trial once, strictly before the first trial period ends."""
    return await _out(services(request), await work(_extend, clock, caller, client_id))


@router.get("/{client_id}/history", response_model=StatusChangeList)
async def history(client_id: PathId, work: WorkDep, caller: PartnerCaller, page: PageDep) -> StatusChangeList:
    """The client's status changes, oldest first."""
    items, total = await work(service.status_history, caller, client_id, page.limit, page.offset)
    return StatusChangeList(
        items=[StatusChangeOut.of(c) for c in items], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{client_id}/audit", response_model=AuditRecordList)
async def audit_log(
    client_id: PathId, work: WorkDep, caller: PartnerCaller, page: PageDep
) -> AuditRecordList:
    """The client's audit records, newest first: every change made to it or in it, and by whom."""
    items, total = await work(service.audit_log, caller, client_id, page.limit, page.offset)
    return AuditRecordList(
        items=[AuditRecordOut.of(r) for r in items], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/{client_id}/properties", response_model=dict[str, str])
async def get_properties(client_id: PathId, work: WorkDep, caller: Caller) -> dict[str, str]:
    """The client's properties, `{key: value}`, for `{{client.prop.KEY}}` in its data sources."""
    return await work(properties.properties_of, caller, client_id)


@router.put("/{client_id}/properties", response_model=dict[str, str])
async def put_properties(
    client_id: PathId, body: Properties, work: WorkDep, clock: ClockDep, caller: Caller
) -> dict[str, str]:
    """Replace all of the client's properties (partner admins and editors; client users only read them)."""
    return await work(properties.set_properties, clock, caller, client_id, body)

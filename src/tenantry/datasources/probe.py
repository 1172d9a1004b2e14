"""Test connection: fetch a source once from the settings a form holds, and show what came back.

Nothing is saved: no source, no rows, no audit record. The fetch goes through the same outgoing
guard, deadline and size cap as a refresh, and a failure reads as the same sentence a refresh would
leave in `last_error`, so what a person sees before saving is what the worker will see after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients import repository as clients_repo
from tenantry.clients.properties import properties_of
from tenantry.datasources.fetch import FetchError, Row, fetch_source
from tenantry.datasources.placeholders import Context
from tenantry.datasources.request import SourceRequest, request_from_body
from tenantry.datasources.schemas import SqlSourceCreate, UrlSourceCreate
from tenantry.outbound import Guard
from tenantry.owners import require_builder
from tenantry.vault import Vault

# What a form shows of the answer: enough to recognise the data, small enough for any page.
SHOWN_ROWS = 20


@dataclass(frozen=True)
class ConnectionTest:
    rows: list[Row]  # the first SHOWN_ROWS rows
    columns: list[str]  # every column of those rows, in first-seen order
    error: str | None = None
    total: int = field(default=0)  # how many rows the source gave


def context_of(db: Session, caller: Principal, client_id: int | None) -> Context | None:
    """The client's values for the placeholders; None for the partner's own source."""
    if client_id is None:
        return None
    client = clients_repo.get_client(db, caller, client_id)
    return Context(
        client_id=client.id,
        external_id=client.external_id,
        name=client.name,
        properties=properties_of(db, caller, client.id),
    )


def prepare(
    db: Session, caller: Principal, body: UrlSourceCreate | SqlSourceCreate, *, client_id: int | None = None
) -> SourceRequest:
    """What a test fetches: the body's settings with the client's values for its placeholders
    (`client_id`'s, or the caller's own client's). Only those who build data sources may test one:
    the test dials out like a refresh does."""
    require_builder(caller)
    context = context_of(db, caller, client_id if client_id is not None else caller.client_id)
    return request_from_body(body, context)


def run(request: SourceRequest, *, guard: Guard) -> ConnectionTest:
    """Fetch once, through the guard and within the deadline of a refresh; reads no database, so a
    caller runs it outside any transaction (a slow server then holds up nobody else)."""
    try:
        rows = fetch_source(request, guard=guard)
    except FetchError as exc:
        return ConnectionTest(rows=[], columns=[], error=str(exc))
    shown = rows[:SHOWN_ROWS]
    columns: dict[str, None] = {}
    for row in shown:
        columns.update(dict.fromkeys(row))
    return ConnectionTest(rows=shown, columns=list(columns), error=None, total=len(rows))


def test_connection(
    db: Session,
    caller: Principal,
    body: UrlSourceCreate | SqlSourceCreate,
    *,
    vault: Vault,
    guard: Guard,
    client_id: int | None = None,
) -> ConnectionTest:
    """Fetch once with the body's settings and return the first rows or the reason it failed;
    saves nothing. (The body carries its secrets in the clear, so `vault` opens nothing here.)"""
    return run(prepare(db, caller, body, client_id=client_id), guard=guard)

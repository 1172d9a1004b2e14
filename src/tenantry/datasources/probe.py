"""Test connection: fetch a source once from the settings a form holds, and show what came back.

Nothing is saved: no source, no rows, no audit record. The fetch goes through the same outgoing
guard, deadline and size cap as a refresh, and a failure reads as the same sentence a refresh would
leave in `last_error`, so what a person sees before saving is what the worker will see after.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients import repository as clients_repo
from tenantry.clients.properties import properties_of
from tenantry.datasources import repository as sources_repo
from tenantry.datasources import service as sources_service
from tenantry.datasources.fetch import FetchError, Row, fetch_source
from tenantry.datasources.placeholders import Context
from tenantry.datasources.request import SourceRequest, request_from_body, request_of
from tenantry.datasources.schemas import MASK, SqlSourceCreate, UrlSourceCreate
from tenantry.errors import NotFound
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
    db: Session,
    caller: Principal,
    body: UrlSourceCreate | SqlSourceCreate,
    *,
    client_id: int | None = None,
    vault: Vault | None = None,
    source_id: int | None = None,
) -> SourceRequest:
    """What a test fetches: the body's settings with the client's values for its placeholders
    (`client_id`'s, or the caller's own client's). Testing the settings of a stored source
    (`source_id`), a secret sent as "*****" stands for the stored one, opened with `vault`; the
    stored secrets are opened only then, so a source whose secrets no configured key opens can
    still be tested with each secret typed again (the way to repair it), and a "*****" standing
    for one of those is refused naming its field (422), as a change of the source is. A client
    user may let "*****" stand for secrets the partner set only with the settings the source has
    stored (`sources_service.require_same_definition`), as a change of the source is held.

    Only those who build data sources may test one: the test dials out like a refresh does."""
    require_builder(caller)
    client_id = client_id if client_id is not None else caller.client_id
    request = request_from_body(body, context_of(db, caller, client_id))
    if source_id is None:
        return request
    source = sources_repo.get_source(db, caller, source_id)
    if source.client_id != client_id or vault is None:
        raise NotFound("No such data source.")
    sources_service.require_same_server(source, body)
    masked = masked_fields(request)
    if not masked:
        return request
    try:
        stored = request_of(source, vault, None)
    except FetchError as exc:
        # The key that sealed them is gone: an expected state the person can fix by typing the
        # secret again, so it is named like any other refused field, never a server error.
        raise sources_service.refuse_fields(masked, f"{exc} Send this secret again.") from None
    # A client user testing the partner's credentials with another request would read what the
    # test shows: the same rule as saving the change.
    sources_service.require_same_definition(db, caller, source, body, masked)
    return with_stored_secrets(request, stored)


def masked_fields(request: SourceRequest) -> list[str]:
    """The secrets of `request` sent as "*****", named as the API's fields are ("headers.X-Key",
    "auth.password", "auth.token", "password")."""
    fields = [f"headers.{name}" for name, value in request.headers.items() if value == MASK]
    fields += [f"auth.{key}" for key in ("password", "token") if (request.auth or {}).get(key) == MASK]
    if (request.sql or {}).get("password") == MASK:
        fields.append("password")
    return fields


def with_stored_secrets(request: SourceRequest, stored: SourceRequest) -> SourceRequest:
    """`request` with each "*****" replaced by the stored secret it stands for (a header by its
    name, a password or token if the kind of sign-in is the same)."""
    headers = {
        name: stored.headers.get(name, "") if value == MASK else value
        for name, value in request.headers.items()
    }
    auth = request.auth
    if auth is not None:
        kept = stored.auth if stored.auth and stored.auth.get("type") == auth.get("type") else {}
        auth = {key: kept.get(key, "") if value == MASK else value for key, value in auth.items()}
    sql = request.sql
    if sql is not None and sql.get("password") == MASK:
        sql = {**sql, "password": (stored.sql or {}).get("password")}
    return replace(request, headers=headers, auth=auth, sql=sql)


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
    source_id: int | None = None,
) -> ConnectionTest:
    """Fetch once with the body's settings and return the first rows or the reason it failed;
    saves nothing (`source_id`: the stored source whose secrets a "*****" stands for)."""
    request = prepare(db, caller, body, client_id=client_id, vault=vault, source_id=source_id)
    return run(request, guard=guard)

"""All SQL about clients.

Tenant scoping is explicit in every query: a lookup by id (`get_client`, `read_client`) picks the
prebuilt statement that fits the caller (`_scoped_lookup`: the caller's partner, and for a client
user its own client only), so another tenant's client is simply not found (404, never 403: we do
not confirm that someone else's object exists). The same lookup read with the caller's API key
(`CLIENT_WITH_KEY`) joins only a client of the key's own partner, and `client_read_with_key` keeps
a client user to their own. Lists, histories and the audit log take the partner's id (or the
partner) and filter on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.auth.repository import KeyCompanion
from tenantry.branding.repository import drop_logo_if_unused
from tenantry.db.branding_models import ClientLogo
from tenantry.db.locks import lock_row
from tenantry.db.models import (
    AllocationChange,
    ApiCallCounter,
    ApiKey,
    AuditEvent,
    Client,
    ClientProperty,
    Partner,
    StatusChange,
)
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import Reads
from tenantry.db.statements_models import DeletedClient
from tenantry.db.text import contains_text
from tenantry.errors import NotFound
from tenantry.fields import INT64_MAX, INT64_MIN
from tenantry.lifecycle import ClientState, Trial
from tenantry.meter.calendar import MeterCalendar
from tenantry.meter.service import client_scope
from tenantry.policy import EffectiveStatus, Status
from tenantry.pool import RESOURCES

_Q = TypeVar("_Q", Select[Client], PreparedSelect)


# Built once (building a statement costs more than running it): a client of the caller's partner;
# the client-user variant pins the id to the caller's own client as well.
_CLIENT_OF_PARTNER = select(Client).where(
    Client.partner_id == bindparam("partner_id"), Client.id == bindparam("client_id")
)
_CLIENT_OF_CLIENT_USER = _CLIENT_OF_PARTNER.where(Client.id == bindparam("own_client_id"))


def _scoped_lookup(
    principal: Principal, client_id: int, of_partner: _Q, of_client_user: _Q
) -> tuple[_Q, dict[str, int]]:
    """The prebuilt lookup that fits the caller, with its parameters."""
    params = {"partner_id": principal.partner_id, "client_id": client_id}
    if principal.client_id is None:
        return of_partner, params
    params["own_client_id"] = principal.client_id
    return of_client_user, params


def get_client(db: Session, principal: Principal, client_id: int) -> Client:
    query, params = _scoped_lookup(principal, client_id, _CLIENT_OF_PARTNER, _CLIENT_OF_CLIENT_USER)
    client = db.scalars(query, params).one_or_none()
    if client is None:
        raise NotFound(f"No client {client_id}.")
    return client


def named_like(q: str) -> ColumnElement[bool]:
    """The clients whose name or external id holds `q`, whatever the case (the lists' search)."""
    return or_(contains_text(Client.name, q), contains_text(Client.external_id, q))


def lock_client(db: Session, client_id: int) -> None:
    """Hold the client's row until the transaction ends (PostgreSQL; SQLite's write transaction
    is alone already), so whole replacements of what hangs off it take turns."""
    lock_row(db, Client, client_id)


class ClientFields(ClientState, Protocol):
    """What a client's view is made of: an ORM `Client`, or a row read by `read_client` (its
    status and trial fields as `lifecycle.ClientState` names them, and these)."""

    @property
    def id(self) -> int: ...
    @property
    def partner_id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def alloc_dashboards(self) -> int: ...
    @property
    def alloc_users(self) -> int: ...
    @property
    def alloc_published_links(self) -> int: ...
    @property
    def alloc_api_calls_per_day(self) -> int: ...
    @property
    def usage_dashboards(self) -> int: ...
    @property
    def usage_users(self) -> int: ...
    @property
    def usage_published_links(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def last_sign_in(self) -> datetime | None: ...


class ClientRow(ClientFields, Protocol):
    @property
    def partner_timezone(self) -> str: ...
    @property
    def partner_previous_timezone(self) -> str | None: ...
    @property
    def partner_timezone_from(self) -> datetime | None: ...


def meter_calendar_of(row: ClientRow) -> MeterCalendar:
    return MeterCalendar(row.partner_timezone, row.partner_previous_timezone, row.partner_timezone_from)


# The same lookup as `get_client` in columns, with the partner's timezones (the meter's day): the
# hottest read of the API runs it on a connection of its own, without an ORM session.
# The partner's timezones beside a client's columns: `ClientRow`'s own (the meter's day).
_PARTNER_TIMEZONES = (
    Partner.timezone.label("partner_timezone"),
    Partner.previous_timezone.label("partner_previous_timezone"),
    Partner.timezone_from.label("partner_timezone_from"),
)
_CLIENT_ROW = (
    select(*Client.__table__.columns, *_PARTNER_TIMEZONES)
    .join(Partner, Partner.id == Client.partner_id)
    .where(Client.partner_id == bindparam("partner_id"), Client.id == bindparam("client_id"))
)
_CLIENT_ROW_OF_PARTNER = PreparedSelect(_CLIENT_ROW)
_CLIENT_ROW_OF_CLIENT_USER = PreparedSelect(_CLIENT_ROW.where(Client.id == bindparam("own_client_id")))


def read_client(conn: Connection, principal: Principal, client_id: int) -> ClientRow:
    query, params = _scoped_lookup(principal, client_id, _CLIENT_ROW_OF_PARTNER, _CLIENT_ROW_OF_CLIENT_USER)
    return _found_client(query.run(conn, **params), client_id)


async def read_client_async(reads: Reads, principal: Principal, client_id: int) -> ClientRow:
    """The same, read without leaving the event loop (`db.reads`)."""
    query, params = _scoped_lookup(principal, client_id, _CLIENT_ROW_OF_PARTNER, _CLIENT_ROW_OF_CLIENT_USER)
    return _found_client(await reads.run(query, **params), client_id)


_PLAIN_INTEGER = re.compile(r"-?[0-9]{1,19}")


def _path_client_id(path: Mapping[str, str]) -> dict[str, Any] | None:
    # Only what the route itself reads as the same id: plain digits in the 64-bit range.
    raw = path["client_id"]
    if _PLAIN_INTEGER.fullmatch(raw) is None:
        return None
    client_id = int(raw)
    if not INT64_MIN <= client_id <= INT64_MAX:
        return None
    return {"client_id": client_id, "scope": client_scope(client_id)}


def _latest_counted(column: Any) -> Any:
    # Of the latest day the database counter keeps for the client (`meter.service.Meter.
    # calls_today_beside` turns it into today's count).
    return (
        select(column)
        .where(ApiCallCounter.scope == bindparam("scope"))
        .order_by(ApiCallCounter.day.desc())
        .limit(1)
        .scalar_subquery()
    )


_TARGET = Client.__table__.alias("target")
# `GET /api/1/clients/{client_id}`: the client named in the path, read in the API key's statement
# (`auth.repository.KeyCompanion`): the same columns as `_CLIENT_ROW`, of the key's own partner,
# and the latest day the database counter keeps for it with its count (read for nothing with Redis,
# which keeps today's count itself: two lookups by key).
CLIENT_WITH_KEY = KeyCompanion(
    name="ClientWithKey",
    columns=(
        *_TARGET.columns,
        *_PARTNER_TIMEZONES,
        _latest_counted(ApiCallCounter.day).label("latest_counted_day"),
        _latest_counted(ApiCallCounter.count).label("latest_counted_calls"),
    ),
    joins=(
        (_TARGET, and_(_TARGET.c.id == bindparam("client_id"), _TARGET.c.partner_id == ApiKey.partner_id)),
    ),
    parameters=_path_client_id,
)


def client_read_with_key(row: Any, principal: Principal, client_id: int) -> ClientRow:
    """The client `CLIENT_WITH_KEY` read for the caller: as `read_client` finds it (a client user
    reaches their own client only; another partner's is not found)."""
    if row.id is None or (principal.client_id is not None and principal.client_id != client_id):
        raise NotFound(f"No client {client_id}.")
    return cast(ClientRow, row)


def _found_client(rows: list[Any], client_id: int) -> ClientRow:
    if not rows:
        raise NotFound(f"No client {client_id}.")
    return cast(ClientRow, rows[0])


def external_id_taken(db: Session, partner_id: int, external_id: str, except_id: int | None = None) -> bool:
    query = select(Client.id).where(Client.partner_id == partner_id, Client.external_id == external_id)
    if except_id is not None:
        query = query.where(Client.id != except_id)
    return db.scalars(query.limit(1)).first() is not None


def external_ids_taken(db: Session, partner_id: int, external_ids: Sequence[str]) -> set[str]:
    """Which of these external ids the partner's clients already hold (one query for a whole file)."""
    taken: set[str] = set()
    wanted = list(dict.fromkeys(external_ids))
    for start in range(0, len(wanted), 500):  # keep each IN list well under drivers' parameter limits
        chunk = wanted[start : start + 500]
        taken.update(
            db.scalars(
                select(Client.external_id).where(
                    Client.partner_id == partner_id, Client.external_id.in_(chunk)
                )
            )
        )
    return taken


def clients_of_partner(db: Session, partner_id: int, client_ids: Sequence[int]) -> dict[int, Client]:
    """The partner's clients among these ids, by id (another partner's ids are simply absent)."""
    found: dict[int, Client] = {}
    wanted = list(dict.fromkeys(client_ids))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        query = select(Client).where(Client.partner_id == partner_id, Client.id.in_(chunk))
        found.update((c.id, c) for c in db.scalars(query))
    return found


def in_effective_status(status: EffectiveStatus, now: datetime) -> ColumnElement[bool]:
    """SQL for "the client's effective status is `status` at `now`" (`lifecycle.effective_status`):
    a trial that has ended is stored as `trial` and is `trial_expired`, never `trial`."""
    if status is EffectiveStatus.TRIAL:
        return and_(
            Client.status == Status.TRIAL.value,
            or_(Client.trial_ends_at.is_(None), Client.trial_ends_at > now),
        )
    if status is EffectiveStatus.TRIAL_EXPIRED:
        return and_(Client.status == Status.TRIAL.value, Client.trial_ends_at <= now)
    return Client.status == status.value


def list_clients(
    db: Session,
    partner: Partner,
    *,
    now: datetime,
    status: str | None,
    external_id: str | None,
    q: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Client], int]:
    conditions = [Client.partner_id == partner.id]
    if status == "trial_expired":
        conditions.append(in_effective_status(EffectiveStatus.TRIAL_EXPIRED, now))
    elif status is not None:
        conditions.append(Client.status == status)
    if external_id is not None:
        conditions.append(Client.external_id == external_id)
    if q:
        conditions.append(named_like(q))
    where = and_(*conditions)
    items = db.scalars(select(Client).where(where).order_by(Client.id).limit(limit).offset(offset)).all()
    if len(conditions) == 1:
        # The unfiltered count is a counter on the partner: no scan over its clients.
        total = partner.client_count
    else:
        total = db.scalar(select(func.count()).select_from(Client).where(where)) or 0
    return items, total


def status_history(
    db: Session, partner_id: int, client_id: int, limit: int, offset: int
) -> tuple[Sequence[StatusChange], int]:
    # Scoped by partner too: the history outlives its client.
    where = (StatusChange.partner_id == partner_id, StatusChange.client_id == client_id)
    items = db.scalars(
        select(StatusChange)
        .where(*where)
        .order_by(StatusChange.at, StatusChange.id)
        .limit(limit)
        .offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(StatusChange).where(*where))
    return items, total or 0


def audit_log(
    db: Session, partner_id: int, client_id: int, limit: int, offset: int = 0
) -> tuple[Sequence[AuditEvent], int]:
    """The client's audit events, newest first, and how many there are.

    Scoped by partner as well: records outlive their client, so a client id alone could name
    another partner's records.
    """
    where = (AuditEvent.partner_id == partner_id, AuditEvent.client_id == client_id)
    items = db.scalars(
        select(AuditEvent)
        .where(*where)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(AuditEvent).where(*where))
    return items, total or 0


def delete_client(db: Session, client: Client, at: datetime, actor: str) -> None:
    """Remove the client; its status and allocation histories stay, with its name beside them.

    Foreign keys cascade from the client to everything in it (users, keys, content); the
    histories have none, so every statement reads the same after the deletion as before it.
    """
    db.add(
        DeletedClient(
            id=client.id,
            partner_id=client.partner_id,
            name=client.name,
            external_id=client.external_id,
            deleted_at=at,
            actor=actor,
        )
    )
    db.flush()
    logo = db.scalar(select(ClientLogo.logo_sha256).where(ClientLogo.client_id == client.id))
    db.execute(delete(Client).where(Client.id == client.id))
    # The client's own logo went with it: the picture goes too, unless something else shows it.
    drop_logo_if_unused(db, logo)


def allocation_of(client: ClientFields) -> dict[str, int]:
    return {r: getattr(client, f"alloc_{r}") for r in RESOURCES}


def set_allocation(client: Client, allocation: dict[str, int]) -> None:
    for r in RESOURCES:
        setattr(client, f"alloc_{r}", allocation[r])


def usage_of(client: ClientFields) -> dict[str, int]:
    return {
        "dashboards": client.usage_dashboards,
        "users": client.usage_users,
        "published_links": client.usage_published_links,
    }


def set_trial(client: Client, trial: Trial) -> None:
    client.trial_started_at = trial.started_at
    client.trial_ends_at = trial.ends_at
    client.trial_extended_at = trial.extended_at


def record_status_change(
    db: Session,
    client: Client,
    from_status: str | None,
    to_status: str,
    at: datetime,
    actor: str,
    reason: str,
) -> StatusChange:
    change = StatusChange(
        partner_id=client.partner_id,
        client_id=client.id,
        from_status=from_status,
        to_status=to_status,
        at=at,
        actor=actor,
        reason=reason,
    )
    db.add(change)
    return change


def record_allocation_change(db: Session, client: Client, at: datetime) -> None:
    db.add(
        AllocationChange(partner_id=client.partner_id, client_id=client.id, at=at, **allocation_of(client))
    )


def record_changes(
    db: Session, allocations: Sequence[Mapping[str, Any]], statuses: Sequence[Mapping[str, Any]]
) -> None:
    """Many clients' allocation and status history rows at once (an import), as batches."""
    if allocations:
        db.connection().execute(insert(AllocationChange), list(allocations))
    if statuses:
        db.connection().execute(insert(StatusChange), list(statuses))


def properties_of(db: Session, client_id: int) -> dict[str, str]:
    """A client's properties, by key."""
    found = db.execute(
        select(ClientProperty.key, ClientProperty.value)
        .where(ClientProperty.client_id == client_id)
        .order_by(ClientProperty.key)
    ).all()
    return {key: value for key, value in found}


def replace_properties(db: Session, client_id: int, values: Mapping[str, str]) -> None:
    """Store exactly these properties for the client (in the caller's transaction)."""
    db.execute(delete(ClientProperty).where(ClientProperty.client_id == client_id))
    if values:
        db.execute(
            insert(ClientProperty),
            [{"client_id": client_id, "key": key, "value": value} for key, value in values.items()],
        )

"""SQL about credentials: API keys, web sessions and the accounts an e-mail signs in to."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, FromClause, bindparam, delete, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from tenantry import lifecycle
from tenantry.auth.keycache import KeyCache
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import hash_token, parse_prefix, token_matches
from tenantry.db.access_models import WebSession
from tenantry.db.generation import tables_read
from tenantry.db.models import ApiKey, Client, ClientUser, Partner, PartnerUser
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import Reads
from tenantry.errors import AccountSuspended, NotFound, TrialEnded, Unauthenticated
from tenantry.meter.calendar import MeterCalendar
from tenantry.meter.service import Quota, client_quota, partner_quota
from tenantry.policy import Capability, EffectiveStatus, allows, stored_status

_INVALID = "The API key is not valid (unknown, revoked or malformed)."
SUSPENDED = "Your account has been suspended. Please contact your account administrator."
TRIAL_ENDED = "Your trial has ended. Please contact your account administrator."

# Built once and prepared: this runs on every API request, and building a statement costs more than
# running it. Columns, not entities, for the same reason.
_KEY_LOOKUP_STATEMENT = (
    select(
        ApiKey.id,
        ApiKey.partner_id,
        ApiKey.partner_user_id,
        ApiKey.client_user_id,
        ApiKey.secret_hash,
        ApiKey.revoked_at,
        Partner.timezone,
        Partner.previous_timezone,
        Partner.timezone_from,
        Partner.plan_api_calls_per_day,
        Partner.allocated_api_calls_per_day,
        PartnerUser.role,
        ClientUser.role,
        Client.id,
        Client.status,
        Client.trial_ends_at,
        Client.alloc_api_calls_per_day,
    )
    .join(Partner, Partner.id == ApiKey.partner_id)
    .outerjoin(PartnerUser, PartnerUser.id == ApiKey.partner_user_id)
    .outerjoin(ClientUser, ClientUser.id == ApiKey.client_user_id)
    .outerjoin(Client, Client.id == ApiKey.client_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)
# Each key's row (with a companion's: each key and path's) is converted once (`db.prepared`).
KEYS_REMEMBERED = 1024
_KEY_LOOKUP = PreparedSelect(_KEY_LOOKUP_STATEMENT, memo=KEYS_REMEMBERED)
_KEY_COLUMNS = len(_KEY_LOOKUP_STATEMENT.selected_columns)


def key_lookup_tables(companions: Iterable[KeyCompanion]) -> frozenset[str]:
    """The tables the key lookups read, with these companions: a write to one of them changes the
    generation the processes' caches of those reads follow (`db.generation`)."""
    return tables_read([_KEY_LOOKUP_STATEMENT, *(c.lookup.statement for c in companions)])


def _no_parameters(_: Mapping[str, str]) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class KeyCompanion:
    """A route's own read, made part of the API key's lookup: one statement, one round trip to the
    database for a request that would otherwise need two (`api.deps.authenticate` runs it for the
    route's method and path). Its `columns` are read beside the key's, through the outer `joins`
    they need (the key's own tables are already there: its partner, user and client); `parameters`
    gives the joins' bound parameters from the path's, or None when it cannot (the route then reads
    as it would without a companion, and refuses what it must itself).

    The route gets its columns as a `row` (named by the columns' keys), read in the same snapshot as
    the key, the caller and its status: before the call was metered, so a call refused for its
    quota read them for nothing, and nothing else."""

    name: str
    columns: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]
    joins: tuple[tuple[FromClause, ColumnElement[bool]], ...] = ()
    parameters: Callable[[Mapping[str, str]], dict[str, Any] | None] = _no_parameters
    lookup: PreparedSelect = field(init=False, repr=False)
    row: type = field(init=False, repr=False)

    def __post_init__(self) -> None:
        statement = _KEY_LOOKUP_STATEMENT.add_columns(*self.columns)
        for target, on in self.joins:
            statement = statement.outerjoin(target, on)
        object.__setattr__(self, "lookup", PreparedSelect(statement, memo=KEYS_REMEMBERED))
        keys = [str(column.key) for column in self.columns]
        object.__setattr__(self, "row", namedtuple(f"{self.name}Row", keys))


@dataclass(frozen=True)
class KeyCaller:
    principal: Principal
    quota: Quota
    # What a `KeyCompanion` read beside the key (an instance of its `row`), when one was asked for.
    companion: Any = None


async def caller_for_token_async(
    reads: Reads,
    token: str,
    now: datetime,
    companion: KeyCompanion | None = None,
    parameters: Mapping[str, Any] | None = None,
    cache: KeyCache | None = None,
) -> KeyCaller:
    """The caller an API key acts for, and the daily quota its calls draw on (read without leaving
    the event loop: `db.reads`, or from the process's `cache` of these reads); with a companion,
    its row as well, from the same statement."""
    query = _KEY_LOOKUP if companion is None else companion.lookup
    bound = {"prefix": key_prefix(token), **(parameters or {})}
    if cache is None:
        rows = await reads.run(query, **bound)
    else:
        rows = await cache.rows((query, *sorted(bound.items())), partial(reads.run, query, **bound))
    caller = key_caller(rows, token, now)
    if companion is None:
        return caller
    return KeyCaller(caller.principal, caller.quota, companion.row(*rows[0][_KEY_COLUMNS:]))


def key_prefix(token: str) -> str:
    prefix = parse_prefix(token)
    if prefix is None:
        raise Unauthenticated(_INVALID)
    return prefix


def key_caller(rows: list[Any], token: str, now: datetime) -> KeyCaller:
    """What the key lookup found, checked against the token and the client's status."""
    if not rows:
        raise Unauthenticated(_INVALID)
    (key_id, partner_id, partner_user_id, client_user_id, secret_hash, revoked_at,
     timezone, previous_timezone, timezone_from, plan_calls, allocated_calls, partner_role, client_role,
     client_id, client_status, trial_ends_at, client_calls) = rows[0][:_KEY_COLUMNS]  # fmt: skip
    if revoked_at is not None or not token_matches(token, secret_hash):
        raise Unauthenticated(_INVALID)
    calendar = MeterCalendar(timezone, previous_timezone, timezone_from)
    if partner_user_id is not None and partner_role is not None:
        principal = Principal("partner_user", partner_id, partner_user_id, partner_role, None, key_id)
        return KeyCaller(principal, partner_quota(partner_id, plan_calls, allocated_calls, calendar))
    if client_user_id is None or client_id is None or client_role is None:
        raise Unauthenticated(_INVALID)
    check_client_access(
        Capability.CLIENT_API, lifecycle.effective_status_at(stored_status(client_status), trial_ends_at, now)
    )
    principal = Principal("client_user", partner_id, client_user_id, client_role, client_id, key_id)
    return KeyCaller(principal, client_quota(client_id, client_calls, calendar))


def client_of_partner(db: Session, partner_id: int, client_id: int) -> Client:
    """One of the partner's clients (another partner's is not found: 404, never 403)."""
    client = db.get(Client, client_id)
    if client is None or client.partner_id != partner_id:
        raise NotFound(f"No client {client_id}.")
    return client


def check_client_access(capability: Capability, status: EffectiveStatus) -> None:
    """Refuse a client's key or user when the status forbids it, with the exact words of SPEC §4."""
    if allows(capability, status):
        return
    if status is EffectiveStatus.TRIAL_EXPIRED:
        raise TrialEnded(TRIAL_ENDED)
    raise AccountSuspended(SUSPENDED)


# Web sessions


@dataclass(frozen=True)
class SessionRow:
    session: WebSession
    partner_user: PartnerUser | None
    client_user: ClientUser | None
    client: Client | None  # the client user's own client
    acting_client: Client | None  # the client a partner user has entered ("sign in as")


def find_session(db: Session, token: str, now: datetime) -> SessionRow | None:
    session = db.scalars(
        select(WebSession).where(WebSession.token_hash == hash_token(token), WebSession.expires_at > now)
    ).one_or_none()
    if session is None:
        return None
    partner_user = db.get(PartnerUser, session.partner_user_id) if session.partner_user_id else None
    client_user = db.get(ClientUser, session.client_user_id) if session.client_user_id else None
    client = db.get(Client, client_user.client_id) if client_user is not None else None
    acting = None
    if session.acting_client_id is not None and partner_user is not None:
        acting = db.scalars(
            select(Client).where(
                Client.id == session.acting_client_id, Client.partner_id == partner_user.partner_id
            )
        ).one_or_none()
    if partner_user is None and client_user is None:
        return None
    return SessionRow(session, partner_user, client_user, client, acting)


def delete_session(db: Session, session_id: int) -> None:
    db.execute(delete(WebSession).where(WebSession.id == session_id))


def delete_expired_sessions(db: Session, now: datetime) -> None:
    db.execute(delete(WebSession).where(WebSession.expires_at <= now))


# Sign-in


def partner_user_password(
    db: Session, email: str, partner_id: int | None = None
) -> tuple[int, str | None] | None:
    """The partner user with this e-mail (id, password hash), if any (of `partner_id` when given)."""
    query = select(PartnerUser.id, PartnerUser.password_hash).where(PartnerUser.email == email)
    if partner_id is not None:
        query = query.where(PartnerUser.partner_id == partner_id)
    row = db.execute(query).first()
    return None if row is None else (row.id, row.password_hash)


def accounts_named(db: Session, email: str) -> int:
    """How many accounts have this e-mail, partner users and client users of every partner."""
    partners = select(func.count()).select_from(PartnerUser).where(PartnerUser.email == email)
    clients = select(func.count()).select_from(ClientUser).where(ClientUser.email == email)
    return int(db.scalar(select(partners.scalar_subquery() + clients.scalar_subquery())) or 0)


def client_user_passwords(
    db: Session, email: str, partner_id: int | None = None
) -> list[tuple[int, str | None]]:
    """The client users with this e-mail, in any client of any partner, or of `partner_id`'s
    clients when given (id, password hash)."""
    query = select(ClientUser.id, ClientUser.password_hash).where(ClientUser.email == email)
    if partner_id is not None:
        query = query.join(Client, Client.id == ClientUser.client_id).where(Client.partner_id == partner_id)
    rows = db.execute(query.order_by(ClientUser.id)).all()
    return [(row.id, row.password_hash) for row in rows]

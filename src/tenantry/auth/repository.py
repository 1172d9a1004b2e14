"""SQL about credentials: API keys, web sessions and the sign-in throttle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.auth.secrets import hash_token, parse_prefix, token_matches
from tenantry.clients.service import effective_status
from tenantry.db.access_models import SignInFailure, WebSession
from tenantry.db.models import ApiKey, Client, ClientUser, Partner, PartnerUser
from tenantry.errors import AccountSuspended, TrialEnded, Unauthenticated
from tenantry.meter.service import Quota, client_scope, partner_scope
from tenantry.policy import Capability, EffectiveStatus, allows
from tenantry.pool import UNLIMITED

_INVALID = "The API key is not valid (unknown, revoked or malformed)."
SUSPENDED = "Your account has been suspended. Please contact your account administrator."
TRIAL_ENDED = "Your trial has ended. Please contact your account administrator."


@dataclass(frozen=True)
class KeyCaller:
    principal: Principal
    quota: Quota


def caller_for_token(db: Session, token: str, now: datetime) -> KeyCaller:
    """The caller an API key acts for, and the daily quota its calls draw on."""
    prefix = parse_prefix(token)
    if prefix is None:
        raise Unauthenticated(_INVALID)
    row = db.execute(
        select(ApiKey, Partner, PartnerUser.role, ClientUser.role, Client)
        .join(Partner, Partner.id == ApiKey.partner_id)
        .outerjoin(PartnerUser, PartnerUser.id == ApiKey.partner_user_id)
        .outerjoin(ClientUser, ClientUser.id == ApiKey.client_user_id)
        .outerjoin(Client, Client.id == ApiKey.client_id)
        .where(ApiKey.prefix == prefix)
    ).one_or_none()
    if row is None:
        raise Unauthenticated(_INVALID)
    key, partner, partner_role, client_role, client = row
    if key.revoked_at is not None or not token_matches(token, key.secret_hash):
        raise Unauthenticated(_INVALID)
    if key.partner_user_id is not None and partner_role is not None:
        principal = Principal("partner_user", key.partner_id, key.partner_user_id, partner_role, None, key.id)
        return KeyCaller(principal, partner_quota(partner))
    if key.client_user_id is None or client is None or client_role is None:
        raise Unauthenticated(_INVALID)
    check_client_access(Capability.CLIENT_API, effective_status(client, now))
    principal = Principal("client_user", key.partner_id, key.client_user_id, client_role, client.id, key.id)
    quota = Quota(
        client_scope(client.id), client.alloc_api_calls_per_day, partner.timezone, burst_key=f"key:{key.id}"
    )
    return KeyCaller(principal, quota)


def partner_quota(partner: Partner) -> Quota:
    """Partner keys draw on what the plan has left after the counted client allocations (seed)."""
    total = partner.plan_api_calls_per_day
    limit = UNLIMITED if total == UNLIMITED else max(0, total - partner.allocated_api_calls_per_day)
    return Quota(partner_scope(partner.id), limit, partner.timezone)


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


def partner_user_by_email(db: Session, email: str) -> PartnerUser | None:
    return db.scalars(select(PartnerUser).where(PartnerUser.email == email)).one_or_none()


def client_users_by_email(db: Session, email: str) -> Sequence[tuple[ClientUser, Client]]:
    rows = db.execute(
        select(ClientUser, Client)
        .join(Client, Client.id == ClientUser.client_id)
        .where(ClientUser.email == email)
        .order_by(ClientUser.id)
    ).all()
    return [(user, client) for user, client in rows]


def recent_failures(db: Session, scope: str, since: datetime) -> list[datetime]:
    """Failed attempts in the window, oldest first."""
    return list(
        db.scalars(
            select(SignInFailure.at)
            .where(SignInFailure.scope == scope, SignInFailure.at > since)
            .order_by(SignInFailure.at)
        ).all()
    )


def record_failure(db: Session, scope: str, at: datetime) -> None:
    db.add(SignInFailure(scope=scope, at=at))


def clear_failures(db: Session, scope: str) -> None:
    db.execute(delete(SignInFailure).where(SignInFailure.scope == scope))


def forget_failures_before(db: Session, before: datetime) -> None:
    db.execute(delete(SignInFailure).where(SignInFailure.at <= before))

"""SQL about credentials: resolve an API key to the caller it acts for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.auth.secrets import parse_prefix, token_matches
from tenantry.clients.service import effective_status
from tenantry.db.models import ApiKey, Client, ClientUser, PartnerUser
from tenantry.errors import AccountSuspended, TrialEnded, Unauthenticated
from tenantry.policy import Capability, EffectiveStatus, allows

_INVALID = "The API key is not valid (unknown, revoked or malformed)."


def principal_for_token(db: Session, token: str, now: datetime) -> Principal:
    prefix = parse_prefix(token)
    if prefix is None:
        raise Unauthenticated(_INVALID)
    row = db.execute(
        select(ApiKey, PartnerUser.role, ClientUser.role, Client)
        .outerjoin(PartnerUser, PartnerUser.id == ApiKey.partner_user_id)
        .outerjoin(ClientUser, ClientUser.id == ApiKey.client_user_id)
        .outerjoin(Client, Client.id == ApiKey.client_id)
        .where(ApiKey.prefix == prefix)
    ).one_or_none()
    if row is None:
        raise Unauthenticated(_INVALID)
    key, partner_role, client_role, client = row
    if key.revoked_at is not None or not token_matches(token, key.secret_hash):
        raise Unauthenticated(_INVALID)
    if key.partner_user_id is not None and partner_role is not None:
        return Principal("partner_user", key.partner_id, key.partner_user_id, partner_role, None, key.id)
    if key.client_user_id is None or client is None or client_role is None:
        raise Unauthenticated(_INVALID)
    check_client_may_use_api(client, now)
    return Principal("client_user", key.partner_id, key.client_user_id, client_role, client.id, key.id)


def check_client_may_use_api(client: Client, now: datetime) -> None:
    status = effective_status(client, now)
    if allows(Capability.CLIENT_API, status):
        return
    if status is EffectiveStatus.TRIAL_EXPIRED:
        raise TrialEnded("Your trial has ended. Please contact your account administrator.")
    raise AccountSuspended("Your account has been suspended. Please contact your account administrator.")

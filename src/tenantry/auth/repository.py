"""SQL about credentials: resolve an API key to the caller it acts for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import parse_prefix, token_matches
from tenantry.db.models import ApiKey, Client, ClientUser, PartnerUser
from tenantry.errors import AccountSuspended, TrialEnded, Unauthenticated
from tenantry.policy import Capability, EffectiveStatus, Status, allows

_INVALID = "The API key is not valid (unknown, revoked or malformed)."

# Built once: this runs on every API request, and building a statement costs more than running it.
# Columns, not entities, for the same reason.
_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.partner_id,
        ApiKey.partner_user_id,
        ApiKey.client_user_id,
        ApiKey.secret_hash,
        ApiKey.revoked_at,
        PartnerUser.role,
        ClientUser.role,
        Client.id,
        Client.status,
        Client.trial_ends_at,
    )
    .outerjoin(PartnerUser, PartnerUser.id == ApiKey.partner_user_id)
    .outerjoin(ClientUser, ClientUser.id == ApiKey.client_user_id)
    .outerjoin(Client, Client.id == ApiKey.client_id)
    .where(ApiKey.prefix == bindparam("prefix"))
)


def principal_for_token(db: Session, token: str, now: datetime) -> Principal:
    prefix = parse_prefix(token)
    if prefix is None:
        raise Unauthenticated(_INVALID)
    row = db.execute(_KEY_LOOKUP, {"prefix": prefix}).one_or_none()
    if row is None:
        raise Unauthenticated(_INVALID)
    (key_id, partner_id, partner_user_id, client_user_id, secret_hash, revoked_at,
     partner_role, client_role, client_id, client_status, trial_ends_at) = row  # fmt: skip
    if revoked_at is not None or not token_matches(token, secret_hash):
        raise Unauthenticated(_INVALID)
    if partner_user_id is not None and partner_role is not None:
        return Principal("partner_user", partner_id, partner_user_id, partner_role, None, key_id)
    if client_user_id is None or client_id is None or client_role is None:
        raise Unauthenticated(_INVALID)
    check_client_may_use_api(Status(client_status), trial_ends_at, now)
    return Principal("client_user", partner_id, client_user_id, client_role, client_id, key_id)


def check_client_may_use_api(status: Status, trial_ends_at: datetime | None, now: datetime) -> None:
    effective = lifecycle.effective_status_at(status, trial_ends_at, now)
    if allows(Capability.CLIENT_API, effective):
        return
    if effective is EffectiveStatus.TRIAL_EXPIRED:
        raise TrialEnded("Your trial has ended. Please contact your account administrator.")
    raise AccountSuspended("Your account has been suspended. Please contact your account administrator.")

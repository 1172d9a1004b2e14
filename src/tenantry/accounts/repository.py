"""SQL about recovering accounts: the accounts an e-mail names, reset links, sessions to end, and
a partner's account rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tenantry.auth.mfa import UserKind
from tenantry.auth.secrets import hash_token
from tenantry.db.access_models import WebSession
from tenantry.db.account_models import PartnerAccountRules, PasswordReset, TotpFactor
from tenantry.db.models import ClientUser, PartnerUser


def accounts_with_email(db: Session, email: str) -> list[PartnerUser | ClientUser]:
    """Every account that signs in with this e-mail: a partner user, and client users anywhere."""
    found: list[PartnerUser | ClientUser] = list(
        db.scalars(select(PartnerUser).where(PartnerUser.email == email))
    )
    found += db.scalars(select(ClientUser).where(ClientUser.email == email).order_by(ClientUser.id))
    return found


def find_reset(db: Session, token: str, now: datetime, partner_id: int | None = None) -> PasswordReset | None:
    """An unused, unexpired reset link (of a user of `partner_id` when given), locked against a
    concurrent second use."""
    query = select(PasswordReset).where(
        PasswordReset.token_hash == hash_token(token),
        PasswordReset.used_at.is_(None),
        PasswordReset.expires_at > now,
    )
    if partner_id is not None:
        query = query.where(PasswordReset.partner_id == partner_id)
    return db.scalars(query.with_for_update()).one_or_none()


def close_resets(db: Session, kind: UserKind, user_id: int, now: datetime) -> None:
    """Every open reset link of the user stops working."""
    column = PasswordReset.partner_user_id if kind == "partner_user" else PasswordReset.client_user_id
    db.execute(
        update(PasswordReset)
        .where(column == user_id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )


def end_sessions(db: Session, kind: UserKind, user_id: int, keep_token: str | None = None) -> None:
    """Sign the user out everywhere, except in the session whose cookie holds `keep_token`."""
    column = WebSession.partner_user_id if kind == "partner_user" else WebSession.client_user_id
    statement = delete(WebSession).where(column == user_id)
    if keep_token is not None:
        statement = statement.where(WebSession.token_hash != hash_token(keep_token))
    db.execute(statement.execution_options(synchronize_session=False))


def account_rules(db: Session, partner_id: int) -> PartnerAccountRules:
    """The partner's account rules (the defaults until it sets any). Two requests may write the
    first rules at once (the console's form takes no partner lock): the second one's insert waits
    for the first, fails on the key, and reads the row the first committed."""
    rules = db.get(PartnerAccountRules, partner_id)
    if rules is not None:
        return rules
    try:
        with db.begin_nested():
            rules = PartnerAccountRules(partner_id=partner_id, require_mfa=False)
            db.add(rules)
    except IntegrityError:
        rules = db.get(PartnerAccountRules, partner_id, populate_existing=True)
        assert rules is not None  # the insert that won is committed: its key was what refused ours
    return rules


def totp_factors(db: Session) -> list[TotpFactor]:
    """Every TOTP factor (a few per user at most: one row each), for re-sealing their secrets."""
    return list(db.scalars(select(TotpFactor).order_by(TotpFactor.id)))

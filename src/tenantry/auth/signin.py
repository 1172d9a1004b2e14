"""Signing in at /login, the sign-in throttle, and partner users entering a client ("sign in as").

One form serves partner users and client users. A wrong password always gets the same answer,
whatever the account's status; the status is told only to someone who proved the password.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from tenantry.audit import audit
from tenantry.auth import repository as repo
from tenantry.auth.secrets import hash_password, verify_password
from tenantry.auth.sessions import SignedIn, start_session
from tenantry.clients import repository as clients_repo
from tenantry.clients.service import effective_status
from tenantry.clock import Clock
from tenantry.db.models import Client, ClientUser
from tenantry.errors import AccountSuspended, Forbidden, TenantryError, TrialEnded
from tenantry.policy import Capability, EffectiveStatus, require

WRONG_CREDENTIALS = "The e-mail address or password is not correct."
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20

# Verified against when no account has the e-mail, so an unknown address takes as long as a
# known one and the timing does not tell which e-mails have accounts.
_DUMMY_HASH = hash_password("tenantry-no-such-account")

ActingMode = Literal["admin", "view_only"]


@dataclass(frozen=True)
class SignInOutcome:
    status_code: int  # 303 on success; 401, 403 or 429 otherwise
    message: str | None = None
    session_token: str | None = None
    is_partner: bool = False


def _throttle_wait(db: Session, scope: str, limit: int, now: datetime) -> timedelta | None:
    failures = repo.recent_failures(db, scope, now - THROTTLE_WINDOW)
    if len(failures) < limit:
        return None
    # Attempts are allowed again once enough failures have left the window.
    return failures[len(failures) - limit] + THROTTLE_WINDOW - now


def too_many_attempts(wait: timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return f"Too many sign-in attempts. Try again in {minutes} {unit}."


def sign_in(db: Session, clock: Clock, email: str, password: str, address: str) -> SignInOutcome:
    now = clock.now()
    email = email.strip().lower()
    account_scope, address_scope = f"account:{email}", f"address:{address}"
    waits = [
        wait
        for wait in (
            _throttle_wait(db, account_scope, MAX_FAILURES_PER_ACCOUNT, now),
            _throttle_wait(db, address_scope, MAX_FAILURES_PER_ADDRESS, now),
        )
        if wait is not None
    ]
    if waits:
        return SignInOutcome(429, too_many_attempts(max(waits)))

    partner_user = repo.partner_user_by_email(db, email)
    if partner_user is not None and verify_password(password, partner_user.password_hash):
        partner_user.last_sign_in = now
        repo.clear_failures(db, account_scope)
        audit(
            db,
            partner_id=partner_user.partner_id,
            actor=f"partner_user:{partner_user.id}",
            action="user.signed_in",
            target=f"partner_user:{partner_user.id}",
            at=now,
        )
        return SignInOutcome(
            303, session_token=start_session(db, now, partner_user=partner_user), is_partner=True
        )

    candidates = repo.client_users_by_email(db, email)
    matched = [(u, c) for u, c in candidates if verify_password(password, u.password_hash)]
    if partner_user is None and not candidates:
        verify_password(password, _DUMMY_HASH)
    told: TenantryError | None = None
    for user, client in matched:
        status = effective_status(client, now)
        refusal = _sign_in_refusal(status)
        if refusal is None:
            return _client_signed_in(db, now, user, client, account_scope)
        # A client in Setup has no users (SPEC §4), so there is nothing to tell: an ordinary failure.
        if status is not EffectiveStatus.SETUP:
            told = told or refusal
    if told is not None:
        return SignInOutcome(told.status, told.detail)
    repo.record_failure(db, account_scope, now)
    repo.record_failure(db, address_scope, now)
    repo.forget_failures_before(db, now - THROTTLE_WINDOW)
    return SignInOutcome(401, WRONG_CREDENTIALS)


def _sign_in_refusal(status: EffectiveStatus) -> TenantryError | None:
    """None when the policy lets the client's users sign in, else the words they are shown."""
    try:
        repo.check_client_access(Capability.USER_SIGN_IN, status)
    except (AccountSuspended, TrialEnded) as refusal:
        return refusal
    return None


def _client_signed_in(
    db: Session, now: datetime, user: ClientUser, client: Client, scope: str
) -> SignInOutcome:
    user.last_sign_in = now
    client.last_sign_in = now
    repo.clear_failures(db, scope)
    audit(
        db,
        partner_id=client.partner_id,
        client_id=client.id,
        actor=f"client_user:{user.id}",
        action="user.signed_in",
        target=f"client_user:{user.id}",
        at=now,
    )
    return SignInOutcome(303, session_token=start_session(db, now, client_user=user))


def sign_out(db: Session, signed_in: SignedIn) -> None:
    repo.delete_session(db, signed_in.session.id)


def enter_client(db: Session, clock: Clock, signed_in: SignedIn, client_id: int, mode: ActingMode) -> Client:
    """A partner admin or editor enters any of its clients, in every status (seed)."""
    if not signed_in.is_partner:
        raise Forbidden("Only partner users can sign in as a client.")
    principal = signed_in.principal
    client = clients_repo.get_client(db, principal, client_id)
    principal.require_write()
    now = clock.now()
    require(Capability.MANAGE_CLIENT, effective_status(client, now))
    signed_in.session.acting_client_id = client.id
    signed_in.session.acting_mode = mode
    audit(
        db,
        partner_id=client.partner_id,
        client_id=client.id,
        actor=principal.actor,
        action="client.signed_in_as",
        target=f"client:{client.id}",
        at=now,
        details={"mode": mode},
    )
    db.flush()
    return client


def leave_client(db: Session, clock: Clock, signed_in: SignedIn) -> None:
    client = signed_in.row.acting_client
    signed_in.session.acting_client_id = None
    signed_in.session.acting_mode = None
    if client is not None:
        audit(
            db,
            partner_id=client.partner_id,
            client_id=client.id,
            actor=signed_in.principal.actor,
            action="client.signed_in_as_ended",
            target=f"client:{client.id}",
            at=clock.now(),
        )
    db.flush()

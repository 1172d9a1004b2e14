"""Signing in at /login, the sign-in throttle, and partner users entering a client ("sign in as").

One form serves partner users and client users. A wrong password always gets the same answer,
whatever the account's status; the status is told only to someone who proved the password.

Guesses are throttled (SPEC §12), counted by `auth.throttle` before any password is checked: 5
failures for one e-mail from one address, 50 for one e-mail from anywhere, and 20 from one address
for any e-mails, within 15 minutes, lock that pair, that e-mail or that address for 15 minutes.
The pair limit is the one a person who mistypes meets, and a guesser from one address cannot lock
the owner out elsewhere with it; the e-mail limit caps a guesser who changes address; the address
limit stops one address from trying a few passwords on each of many e-mails.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Literal

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.audit import audit
from tenantry.auth import mfa, throttle
from tenantry.auth import repository as repo
from tenantry.auth.addresses import throttled_address
from tenantry.auth.secrets import hash_password, verify_password
from tenantry.auth.sessions import SignedIn, start_session
from tenantry.clock import Clock
from tenantry.db.models import Client, ClientUser, PartnerUser
from tenantry.db.session import Database
from tenantry.errors import AccountSuspended, Forbidden, TenantryError, TrialEnded
from tenantry.fields import normalised_email
from tenantry.policy import Capability, EffectiveStatus, require
from tenantry.vault import Vault

WRONG_CREDENTIALS = "The e-mail address or password is not correct."
MAX_FAILURES_PER_PAIR = 5
MAX_FAILURES_PER_EMAIL = 50
MAX_FAILURES_PER_ADDRESS = 20
PAIR = "sign-in-pair"
# Unicode categories no account's e-mail holds: controls (NUL among them, which PostgreSQL refuses
# in text), lone surrogates, and the line and paragraph separators.
_NOT_IN_AN_EMAIL = frozenset({"Cc", "Cs", "Zl", "Zp"})

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
    retry_after: str | None = None  # the Retry-After header of a 429
    # The password was right but a second step remains (a TOTP code, or enrolling first).
    pending: mfa.Pending | None = None
    recovery_codes: tuple[str, ...] = ()  # shown once, after enrolling at sign-in


@dataclass(frozen=True)
class _Matches:
    """The accounts whose password was given: a partner user's, or client users' (any clients)."""

    accounts: int  # how many accounts have the e-mail, matched or not, of every partner
    partner_user_id: int | None = None
    client_user_ids: tuple[int, ...] = ()


def too_many_attempts(refused: throttle.Refused) -> str:
    return f"Too many sign-in attempts. Try again in {refused.minutes}."


def sign_in_limits(email: str, address: str) -> list[throttle.Limit]:
    counted = throttled_address(address)
    return [
        throttle.Limit(PAIR, f"{email}\0{counted}", MAX_FAILURES_PER_PAIR),
        throttle.Limit("sign-in-email", email, MAX_FAILURES_PER_EMAIL),
        throttle.Limit("sign-in-address", counted, MAX_FAILURES_PER_ADDRESS),
    ]


def may_name_an_account(email: str) -> bool:
    """False for input no account's e-mail can be (a NUL byte, other controls): such a sign-in is
    an ordinary wrong one, counted, and never reaches the database as a query."""
    return bool(email) and not any(unicodedata.category(ch) in _NOT_IN_AN_EMAIL for ch in email)


async def sign_in(
    database: Database,
    clock: Clock,
    email: str,
    password: str,
    address: str,
    partner_id: int | None = None,
) -> SignInOutcome:
    """Count the attempt, check the password outside any lock, then sign in or count the failure.

    With `partner_id` (the sign-in page of a partner's own domain) only that partner's users and
    its clients' users can sign in; anyone else's account is as unknown there as a wrong e-mail,
    and gets the same answer, in the same time.
    """
    email = normalised_email(email)
    outcome = await throttle.attempt(
        database,
        clock,
        sign_in_limits(email, address),
        partial(_matching_accounts, database, email, password, partner_id),
        _conclude,
    )
    if isinstance(outcome, throttle.Refused):
        return SignInOutcome(429, too_many_attempts(outcome), retry_after=outcome.retry_after)
    return outcome


CODE_REFUSED = "The code is not correct."
PENDING_ENDED = "The sign-in took too long; sign in again."


async def second_factor(
    database: Database, clock: Clock, vault: Vault, step: mfa.Pending, code: str, address: str
) -> SignInOutcome:
    """The second step of a pending sign-in: a TOTP or recovery code (`code`), or the first code
    of a factor being set up (`enrol`). Counted by the sign-in throttle like a password."""
    email = await run_sync(_email_of, database, step)
    if email is None:
        return SignInOutcome(401, PENDING_ENDED)
    outcome = await throttle.attempt(
        database, clock, sign_in_limits(email, address), _nothing, partial(_conclude_code, vault, step, code)
    )
    if isinstance(outcome, throttle.Refused):
        return SignInOutcome(429, too_many_attempts(outcome), retry_after=outcome.retry_after)
    return outcome


def _nothing() -> None:
    return None


def _email_of(database: Database, step: mfa.Pending) -> str | None:
    with database.session() as db:
        user = mfa.user_of(db, step.kind, step.user_id)
        return user.email if user is not None else None


def _conclude_code(
    vault: Vault,
    step: mfa.Pending,
    code: str,
    db: Session,
    attempt: throttle.Reservation,
    _: None,
    now: datetime,
) -> SignInOutcome:
    user = mfa.pending_user(db, step)
    factor = mfa.factor_of(db, step.kind, step.user_id, lock=True) if user is not None else None
    codes: list[str] | None = None
    if user is not None and factor is not None:
        if step.purpose == "code" and factor.confirmed_at is not None:
            codes = [] if mfa.code_opens(db, vault, factor, code, now) else None
        elif step.purpose == "enrol" and mfa.begun_here(step, factor):
            codes = mfa.confirm(db, vault, factor, code, now)
    if user is None or codes is None:
        throttle.fail(db, attempt, now)
        return SignInOutcome(401, CODE_REFUSED)
    throttle.release(db, attempt)
    if isinstance(user, PartnerUser):
        outcome = partner_session(db, now, user)
    else:
        client = db.get(Client, user.client_id)
        assert client is not None
        # The status may have changed since the password step: it is asked again.
        refusal = _sign_in_refusal(lifecycle.client_status(client, now))
        if refusal is not None:
            return SignInOutcome(refusal.status, refusal.detail)
        outcome = client_session(db, now, user, client)
    # Signed in now: the pair's earlier failures (passwords and codes) may be forgiven (`_proven`).
    _forgive_pair(db, attempt, repo.accounts_named(db, user.email))
    return replace(outcome, recovery_codes=tuple(codes))


def _matching_accounts(database: Database, email: str, password: str, partner_id: int | None) -> _Matches:
    """Which accounts this password opens. The hashes are read first, and the session closed
    before argon2 runs, so no connection is held while passwords are checked."""
    partner_user, client_users, accounts = None, [], 0
    if may_name_an_account(email):
        with database.session() as db:
            partner_user = repo.partner_user_password(db, email, partner_id)
            client_users = repo.client_user_passwords(db, email, partner_id)
            # On a partner's domain only its own accounts may open, but the e-mail's pair count
            # is shared by every partner's: whether it may be forgiven depends on all of them.
            if partner_id is not None:
                accounts = repo.accounts_named(db, email)
    in_scope = len(client_users) + (partner_user is not None)
    accounts = accounts or in_scope
    if partner_user is not None and verify_password(password, partner_user[1]):
        return _Matches(accounts, partner_user_id=partner_user[0])
    # An account without a password yet (invited) checks no hash: the decoy is checked instead,
    # so such an e-mail takes as long as an unknown one.
    hashes = [hashed for _, hashed in client_users] + ([partner_user[1]] if partner_user else [])
    if not any(hashes):
        verify_password(password, _DUMMY_HASH)
    return _Matches(
        accounts,
        client_user_ids=tuple(uid for uid, hashed in client_users if verify_password(password, hashed)),
    )


def _conclude(db: Session, attempt: throttle.Reservation, matches: _Matches, now: datetime) -> SignInOutcome:
    partner_user = db.get(PartnerUser, matches.partner_user_id) if matches.partner_user_id else None
    if partner_user is not None:
        outcome = _partner_signed_in(db, now, partner_user)
        _proven(db, attempt, matches, signed_in=outcome.pending is None)
        return outcome
    told: TenantryError | None = None
    for user_id in matches.client_user_ids:
        user = db.get(ClientUser, user_id)
        client = db.get(Client, user.client_id) if user is not None else None
        if user is None or client is None:
            continue
        status = lifecycle.client_status(client, now)
        refusal = _sign_in_refusal(status)
        if refusal is None:
            outcome = _client_signed_in(db, now, user, client)
            _proven(db, attempt, matches, signed_in=outcome.pending is None)
            return outcome
        # A client in Setup has no users (SPEC §4), so there is nothing to tell: an ordinary failure.
        if status is not EffectiveStatus.SETUP:
            told = told or refusal
    if told is not None:
        # The password was right, so the status may be told.
        _proven(db, attempt, matches, signed_in=False)
        return SignInOutcome(told.status, told.detail)
    throttle.fail(db, attempt, now)
    return SignInOutcome(401, WRONG_CREDENTIALS)


def _proven(db: Session, attempt: throttle.Reservation, matches: _Matches, *, signed_in: bool) -> None:
    """The password was right: the attempt was no failure.

    The e-mail's earlier failures from this address are forgiven only once the user is signed in
    (`signed_in`: no second step remains), and only when the e-mail names one account. A right
    password alone forgives nothing, or someone who holds the password but not the second factor
    could wipe the count of wrong codes by giving the password again. Partner users and client
    users of any partner may share an e-mail, and otherwise someone who holds one such account
    could sign in to it between guesses at another's password and never be stopped. The e-mail's
    and the address's own counts are never forgiven.
    """
    throttle.release(db, attempt)
    if signed_in:
        _forgive_pair(db, attempt, matches.accounts)


def _forgive_pair(db: Session, attempt: throttle.Reservation, accounts: int) -> None:
    if accounts == 1:
        throttle.forgive(db, next(limit for limit in attempt.limits if limit.kind == PAIR))


def _sign_in_refusal(status: EffectiveStatus) -> TenantryError | None:
    """None when the policy lets the client's users sign in, else the words they are shown."""
    try:
        repo.check_client_access(Capability.USER_SIGN_IN, status)
    except (AccountSuspended, TrialEnded) as refusal:
        return refusal
    return None


def _partner_signed_in(db: Session, now: datetime, user: PartnerUser) -> SignInOutcome:
    step = mfa.second_step(db, user)
    if step is not None:
        return SignInOutcome(303, pending=mfa.pending(step, user, now), is_partner=True)
    return partner_session(db, now, user)


def partner_session(db: Session, now: datetime, user: PartnerUser) -> SignInOutcome:
    """The partner user is signed in: every step asked of them is done."""
    user.last_sign_in = now
    audit(
        db,
        partner_id=user.partner_id,
        actor=f"partner_user:{user.id}",
        action="user.signed_in",
        target=f"partner_user:{user.id}",
        at=now,
    )
    return SignInOutcome(303, session_token=start_session(db, now, partner_user=user), is_partner=True)


def _client_signed_in(db: Session, now: datetime, user: ClientUser, client: Client) -> SignInOutcome:
    step = mfa.second_step(db, user)
    if step is not None:
        return SignInOutcome(303, pending=mfa.pending(step, user, now))
    return client_session(db, now, user, client)


def client_session(db: Session, now: datetime, user: ClientUser, client: Client) -> SignInOutcome:
    """The client user is signed in: every step asked of them is done."""
    user.last_sign_in = now
    client.last_sign_in = now
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
    client = repo.client_of_partner(db, principal.partner_id, client_id)
    principal.require_write()
    now = clock.now()
    require(Capability.MANAGE_CLIENT, lifecycle.client_status(client, now))
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

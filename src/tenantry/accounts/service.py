"""Account use cases (SPEC §18): forgotten passwords, changing one's password, the TOTP second
factor, and a partner's rule that its users must have one. Services flush, never commit; the few
that are throttled (`request_reset`, `change_password`, `turn_off_totp`) take the throttle's own
short transactions, as signing in does.

A reset request is answered the same way whether its e-mail names an account or not: the answer
is given after the throttle has counted it, and the accounts are looked up and written to only
afterwards (`send_reset_links`, run once the answer is sent), so neither the answer nor its timing
tells which e-mails have accounts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial

from anyio.to_thread import run_sync
from sqlalchemy.orm import Session

from tenantry.accounts import repository as repo
from tenantry.audit import audit
from tenantry.auth import mfa, throttle
from tenantry.auth.addresses import throttled_address
from tenantry.auth.passwords import check_password, weakness
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import hash_password, hash_token, verify_password
from tenantry.auth.signin import may_name_an_account, sign_in_limits, too_many_attempts
from tenantry.branding import brand_for, email_html
from tenantry.clock import Clock
from tenantry.db.account_models import PasswordReset
from tenantry.db.models import Client, ClientUser, PartnerUser
from tenantry.db.session import Database
from tenantry.domains import partner_base_url
from tenantry.emails import service as emails
from tenantry.errors import Forbidden, MfaState, NotFound, RateLimited, WeakPassword
from tenantry.fields import normalised_email
from tenantry.mail import Mail, Mailer, one_line
from tenantry.settings import Settings
from tenantry.users import repository as users_repo
from tenantry.vault import Vault, VaultError

RESET_LIFETIME = timedelta(hours=1)
# Reset e-mails a person (or someone who knows their address) is sent within the throttle's
# window, and requests one address can make for any e-mails.
RESETS_PER_EMAIL = 3
RESETS_PER_ADDRESS = 20
WRONG_PASSWORD = "The current password is not correct."


@dataclass(frozen=True)
class ResetSender:
    """What sending reset links needs: the mail port and the settings for the link's address."""

    mailer: Mailer
    settings: Settings


def _partner_of(db: Session, user: PartnerUser | ClientUser) -> tuple[int, int | None]:
    """The user's partner, and client for a client user (for branding and audit)."""
    if isinstance(user, PartnerUser):
        return user.partner_id, None
    client = db.get(Client, user.client_id)
    assert client is not None
    return client.partner_id, client.id


# Forgotten passwords


async def request_reset(database: Database, clock: Clock, email: str, address: str) -> str:
    """Count a reset request against the caller's address, then its e-mail; the normalised e-mail
    to send links for, or "" when there is nothing to send.

    Too many requests from one address: 429 `rate_limited`, the same for every e-mail. Too many
    for one e-mail (from any addresses) are answered as usual, and send nothing more: the links
    already sent within the window still work (`RESET_LIFETIME` is longer), so someone asking for
    another person's address cannot hold back that person's own request.
    """
    email = normalised_email(email)
    now = clock.now()
    by_address = throttle.Limit("reset-address", throttled_address(address), RESETS_PER_ADDRESS)
    reserved = await run_sync(_reserve, database, [by_address], now)
    if isinstance(reserved, throttle.Refused):
        sentence = too_many_attempts(reserved).replace("sign-in attempts", "password reset requests")
        raise RateLimited(sentence, headers={"Retry-After": reserved.retry_after})
    if not may_name_an_account(email):
        return ""
    by_email = throttle.Limit("reset-email", email, RESETS_PER_EMAIL)
    reserved = await run_sync(_reserve, database, [by_email], now)
    return "" if isinstance(reserved, throttle.Refused) else email


def _reserve(database: Database, limits: list[throttle.Limit], now: datetime) -> object:
    # A request is never released: each one counts until it leaves the window.
    with database.session(write=True) as db:
        reserved = throttle.reserve(db, limits, now)
        db.commit()
    return reserved


def send_reset_links(db: Session, clock: Clock, sender: ResetSender, email: str) -> int:
    """Queue one reset e-mail per account the e-mail names; how many were queued."""
    if not email:
        return 0
    now = clock.now()
    users = repo.accounts_with_email(db, email)
    for user in users:
        partner_id, client_id = _partner_of(db, user)
        # 256 random bits; only the hash is kept, so the table alone resets no password.
        token = secrets.token_urlsafe(32)
        db.add(
            PasswordReset(
                token_hash=hash_token(token),
                partner_id=partner_id,
                partner_user_id=user.id if isinstance(user, PartnerUser) else None,
                client_user_id=user.id if isinstance(user, ClientUser) else None,
                created_at=now,
                expires_at=now + RESET_LIFETIME,
            )
        )
        brand = brand_for(db, partner_id, client_id)
        base_url = partner_base_url(db, sender.settings, partner_id)
        link = f"{base_url}/reset/{token}"
        text = (
            f"Hello {one_line(user.name)},\n\nSomeone asked to reset the password of your "
            f"{one_line(brand.product_name)} account ({user.email}).\n"
            f"Choose a new password here (the link works once, for 1 hour):\n\n{link}\n\n"
            "If it was not you, ignore this message: your password stays as it is.\n"
        )
        mail = Mail(
            to=[user.email],
            subject=f"Reset your {one_line(brand.product_name)} password",
            text=text,
            html=email_html(brand, text, link=link, link_text="Choose a new password", base_url=base_url),
            from_name=brand.sender_name,
        )
        # Sent by the system: it counts against no one's daily dashboard e-mails, and its body (the
        # one-time link) is dropped once it is settled, as every message's is.
        emails.queue(
            db, sender.mailer, now, mail, partner_id=partner_id, kind="password_reset", sent_by="system"
        )
        audit(
            db,
            partner_id=partner_id,
            client_id=client_id,
            actor="system",
            action="user.password_reset_requested",
            target=f"{mfa.kind_of(user)}:{user.id}",
            at=now,
        )
    db.flush()
    return len(users)


def reset_is_open(db: Session, clock: Clock, token: str, partner_id: int | None = None) -> bool:
    """Whether the reset link is open (on a partner's own domain, `partner_id`: one of its users')."""
    return repo.find_reset(db, token, clock.now(), partner_id) is not None


def reset_password(
    db: Session, clock: Clock, token: str, password: str, partner_id: int | None = None
) -> bool:
    """Choose a new password through a reset link; False when the link is unknown, used or
    expired, or, on a partner's own domain (`partner_id`), another partner's user's (nothing
    changes then). A weak password raises `WeakPassword` and keeps the link open.

    Every session of the user ends, and every other open link of theirs stops working. Signing in
    afterwards is an ordinary sign-in: the client's status and the second factor still apply.
    """
    now = clock.now()
    reset = repo.find_reset(db, token, now, partner_id)
    if reset is None:
        return False
    kind: mfa.UserKind = "partner_user" if reset.partner_user_id is not None else "client_user"
    user = mfa.user_of(db, kind, reset.partner_user_id or reset.client_user_id or 0)
    if user is None:
        return False
    check_password(password, user.email)
    user.password_hash = hash_password(password)
    repo.close_resets(db, kind, user.id, now)
    # An invitation not yet used would otherwise choose the password again later.
    users_repo.close_invitations(db, user, now)
    repo.end_sessions(db, kind, user.id)
    partner_id, client_id = _partner_of(db, user)
    audit(
        db,
        partner_id=partner_id,
        client_id=client_id,
        actor=f"{kind}:{user.id}",
        action="user.password_reset",
        target=f"password_reset:{reset.id}",
        at=now,
    )
    db.flush()
    return True


# The caller's own password


async def change_password(
    database: Database,
    clock: Clock,
    principal: Principal,
    current: str,
    new: str,
    address: str,
    keep_session: str | None,
) -> None:
    """Change the caller's password. A wrong current password is 403 and counted by the sign-in
    throttle; every other session of the user ends (the one that asked, if any, stays)."""
    email = await run_sync(_own_email, database, principal)
    found = weakness(new, email)
    if found is not None:
        raise WeakPassword(found.sentence, field="new", reason=found.reason)
    outcome = await throttle.attempt(
        database,
        clock,
        sign_in_limits(email, address),
        partial(_own_password_matches, database, principal, current),
        partial(_conclude_change, principal, new, keep_session),
    )
    if isinstance(outcome, throttle.Refused):
        raise RateLimited(too_many_attempts(outcome), headers={"Retry-After": outcome.retry_after})
    if not outcome:
        raise Forbidden(WRONG_PASSWORD, field="current")


def _own_user(db: Session, principal: Principal) -> PartnerUser | ClientUser:
    user = mfa.user_of(db, principal.kind, principal.user_id)
    if user is None:
        raise NotFound("The calling user no longer exists.")
    return user


def _own_email(database: Database, principal: Principal) -> str:
    with database.session() as db:
        return _own_user(db, principal).email


def _own_password_matches(database: Database, principal: Principal, password: str) -> bool:
    # The hash is read first and the session closed before argon2 runs (as at sign-in).
    with database.session() as db:
        stored = _own_user(db, principal).password_hash
    return verify_password(password, stored)


def _conclude_change(
    principal: Principal,
    new: str,
    keep: str | None,
    db: Session,
    attempt: throttle.Reservation,
    ok: bool,
    now: datetime,
) -> bool:
    if not ok:
        throttle.fail(db, attempt, now)
        return False
    throttle.release(db, attempt)
    user = _own_user(db, principal)
    user.password_hash = hash_password(new)
    repo.end_sessions(db, principal.kind, user.id, keep_token=keep)
    repo.close_resets(db, principal.kind, user.id, now)
    _audit_own(db, principal, "user.password_changed", now)
    db.flush()
    return True


def _audit_own(db: Session, principal: Principal, action: str, now: datetime) -> None:
    audit(
        db,
        partner_id=principal.partner_id,
        client_id=principal.client_id,
        actor=principal.actor,
        action=action,
        target=principal.actor,
        at=now,
    )


# TOTP


@dataclass(frozen=True)
class TotpBegun:
    secret: str
    otpauth_uri: str
    # The same URI with the account's name cut short, for a QR code the whole one overflows (a
    # long address of characters that take many bytes each).
    short_uri: str


# How many characters of the account's name the short URI keeps.
SHORT_ACCOUNT_CHARS = 24


def _begun(db: Session, secret: str, user: PartnerUser | ClientUser) -> TotpBegun:
    partner_id, client_id = _partner_of(db, user)
    issuer = brand_for(db, partner_id, client_id).product_name
    short = user.email if len(user.email) <= SHORT_ACCOUNT_CHARS else user.email[:SHORT_ACCOUNT_CHARS] + "…"
    return TotpBegun(
        secret, mfa.otpauth_uri(secret, user.email, issuer), mfa.otpauth_uri(secret, short, issuer)
    )


def begin_totp(db: Session, clock: Clock, vault: Vault, principal: Principal) -> TotpBegun:
    """A new TOTP secret for the caller, to be confirmed with a code; 409 when TOTP is on already."""
    user = _own_user(db, principal)
    secret = mfa.begin(db, vault, user, clock.now())
    if secret is None:
        raise MfaState("Two-step sign-in is on already; turn it off first to set it up again.")
    return _begun(db, secret, user)


def enrolment(
    db: Session, clock: Clock, vault: Vault, step: mfa.Pending
) -> tuple[TotpBegun, mfa.Pending] | None:
    """The factor a user sets up at sign-in, and the pending sign-in naming it (to be signed into
    the pending cookie again); None when there is no such user, their password changed since the
    sign-in began, or their TOTP is on already.

    Only a secret this same pending sign-in began is shown again (so a reload shows the code the
    user may have scanned already). Any other unconfirmed one is replaced by a new secret: it may
    have been begun through the API by whoever holds the user's key, who knows it."""
    user = mfa.pending_user(db, step)
    if user is None:
        return None
    factor = mfa.factor_of(db, step.kind, step.user_id, lock=True)
    if factor is not None and factor.confirmed_at is not None:
        return None
    secret = None
    if factor is not None and mfa.begun_here(step, factor):
        try:
            secret = mfa.secret_of(vault, factor)
        except VaultError:
            secret = None
    if secret is None:
        secret = mfa.begin(db, vault, user, clock.now())
        factor = mfa.factor_of(db, step.kind, step.user_id)
    assert secret is not None and factor is not None
    return _begun(db, secret, user), replace(step, begun=mfa.factor_digest(factor))


def confirm_totp(db: Session, clock: Clock, vault: Vault, principal: Principal, code: str) -> list[str]:
    """Turn TOTP on with a code from the app; the ten recovery codes, shown this once."""
    now = clock.now()
    factor = mfa.factor_of(db, principal.kind, principal.user_id, lock=True)
    if factor is None or factor.confirmed_at is not None:
        raise MfaState("There is no two-step sign-in being set up; begin again.")
    codes = mfa.confirm(db, vault, factor, code, now)
    if codes is None:
        raise Forbidden(mfa_code_refused(), field="code")
    _audit_own(db, principal, "user.mfa_enabled", now)
    return codes


def mfa_code_refused() -> str:
    return "The code is not correct; type the code your app shows now."


def totp_is_on(db: Session, principal: Principal) -> bool:
    return mfa.has_confirmed_factor(db, principal.kind, principal.user_id)


async def turn_off_totp(
    database: Database, clock: Clock, vault: Vault, principal: Principal, code: str, address: str
) -> None:
    """Turn TOTP off with a code (or a recovery code). A wrong code is 403 and counted by the
    sign-in throttle. A partner user whose partner requires it cannot turn it off (409)."""
    email = await run_sync(_own_email, database, principal)
    outcome = await throttle.attempt(
        database,
        clock,
        sign_in_limits(email, address),
        _nothing,
        partial(_conclude_turn_off, vault, principal, code),
    )
    if isinstance(outcome, throttle.Refused):
        raise RateLimited(too_many_attempts(outcome), headers={"Retry-After": outcome.retry_after})
    if isinstance(outcome, Exception):
        raise outcome


def _nothing() -> None:
    return None


def _conclude_turn_off(
    vault: Vault,
    principal: Principal,
    code: str,
    db: Session,
    attempt: throttle.Reservation,
    _: None,
    now: datetime,
) -> Exception | None:
    factor = mfa.factor_of(db, principal.kind, principal.user_id, lock=True)
    if factor is None or factor.confirmed_at is None:
        throttle.release(db, attempt)
        return MfaState("Two-step sign-in is not on.")
    if principal.is_partner and mfa.partner_requires_mfa(db, principal.partner_id):
        throttle.release(db, attempt)
        return MfaState("Your organisation requires two-step sign-in: it cannot be turned off.")
    if not mfa.code_opens(db, vault, factor, code, now):
        throttle.fail(db, attempt, now)
        return Forbidden(mfa_code_refused(), field="code")
    throttle.release(db, attempt)
    db.delete(factor)
    _audit_own(db, principal, "user.mfa_disabled", now)
    db.flush()
    return None


# The partner's rule


def require_mfa(db: Session, principal: Principal) -> bool:
    return mfa.partner_requires_mfa(db, principal.partner_id)


def set_require_mfa(db: Session, clock: Clock, principal: Principal, value: bool) -> None:
    """Make TOTP mandatory (or not) for the partner's own users, from their next sign-in (admins)."""
    principal.require_admin()
    rules = repo.account_rules(db, principal.partner_id)
    if rules.require_mfa == value:
        return
    rules.require_mfa = value
    audit(
        db,
        partner_id=principal.partner_id,
        actor=principal.actor,
        action="partner.require_mfa_changed",
        target=f"partner:{principal.partner_id}",
        at=clock.now(),
        details={"require_mfa": value},
    )
    db.flush()


@dataclass(frozen=True)
class TotpRotation:
    rotated: int
    current: int
    unreadable: list[int]


def rotate_totp_secrets(db: Session, vault: Vault) -> TotpRotation:
    """Seal every TOTP secret again under the vault's current key (with `tenantry secrets rotate`),
    so the old keys can be retired without turning anyone's second factor into noise."""
    rotated = current = 0
    unreadable: list[int] = []
    for factor in repo.totp_factors(db):
        try:
            if vault.is_current(factor.secret_sealed):
                vault.open(factor.secret_sealed)
                current += 1
                continue
            factor.secret_sealed = vault.rotate(factor.secret_sealed)
            rotated += 1
        except VaultError:
            unreadable.append(factor.id)
    db.flush()
    return TotpRotation(rotated, current, unreadable)

"""The TOTP second factor (SPEC §18): codes checked against a user's sealed secret, single-use
recovery codes, and the signed pending sign-in that lies between the password and the code.

A pending sign-in is no session: it is a signed, short-lived cookie naming the user whose password
was right and what is still asked of them (`code`: a TOTP or recovery code; `enrol`: set up TOTP
first, because their partner requires it). It opens nothing but the second step's page. One that
enrols also names the secret its own enrol page began (`begun_here`): a secret begun any other way,
such as through the API by whoever holds the user's key, is never shown there nor confirmed.

A TOTP code is accepted for the time step before and after the present one (clocks drift), and
never twice: the factor keeps the newest step used, and an older or equal one is refused, so a
code seen over someone's shoulder cannot sign in again. Recovery codes carry 50 random bits each
and are stored as SHA-256 hashes (nothing to guess, so no slow hash is needed); each works once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from tenantry.auth.sessions import sign, unsign
from tenantry.db.account_models import PartnerAccountRules, RecoveryCode, TotpFactor
from tenantry.db.locks import lock_row
from tenantry.db.models import ClientUser, PartnerUser
from tenantry.vault import Vault, VaultError

UserKind = Literal["partner_user", "client_user"]
Purpose = Literal["code", "enrol"]

PENDING_COOKIE = "tenantry_pending"
PENDING_LIFETIME = timedelta(minutes=5)
RECOVERY_CODES = 10
DIGITS = 6
# The step before and after the present one are accepted too (phones' clocks drift).
DRIFT_STEPS = 1


@dataclass(frozen=True)
class Pending:
    """Whose password was right, and what is still asked before they are signed in."""

    purpose: Purpose
    kind: UserKind
    user_id: int
    expires_at: int  # epoch seconds
    # Which password was proven (`_proof`): a pending sign-in ends when the password changes.
    proof: str = ""
    # The factor this pending sign-in's enrol page began (`factor_digest`), "" before it has.
    begun: str = ""

    def signed(self, secret: str) -> str:
        # The nonce makes each pending sign-in's cookie unlike any other's.
        nonce = secrets.token_hex(8)
        value = (
            f"{self.purpose}:{self.kind}:{self.user_id}:{self.expires_at}:{self.proof}:{nonce}:{self.begun}"
        )
        return sign(value, secret)


def _proof(user: PartnerUser | ClientUser) -> str:
    """A short digest of the user's password hash: it changes whenever the password does."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:32]


def pending(purpose: Purpose, user: PartnerUser | ClientUser, now: datetime) -> Pending:
    expires = int((now + PENDING_LIFETIME).timestamp())
    return Pending(purpose, kind_of(user), user.id, expires, _proof(user))


def pending_user(db: Session, step: Pending) -> PartnerUser | ClientUser | None:
    """The user of a pending sign-in, unless they are gone or their password has changed since
    it was proven (a reset "ends the user's other sessions": a half-made one too)."""
    user = user_of(db, step.kind, step.user_id)
    if user is None or not hmac.compare_digest(step.proof, _proof(user)):
        return None
    return user


def read_pending(signed: str | None, secret: str, now: datetime) -> Pending | None:
    """The pending sign-in a cookie names, if its signature holds and it has not expired."""
    value = unsign(signed, secret)
    if value is None:
        return None
    try:
        purpose, kind, user_id, expires, proof, _nonce, begun = value.split(":")
        found = Pending(purpose, kind, int(user_id), int(expires), proof, begun)  # type: ignore[arg-type]
    except ValueError:
        return None
    if found.purpose not in ("code", "enrol") or found.kind not in ("partner_user", "client_user"):
        return None
    if found.expires_at <= now.timestamp():
        return None
    return found


def kind_of(user: PartnerUser | ClientUser) -> UserKind:
    return "partner_user" if isinstance(user, PartnerUser) else "client_user"


def user_of(db: Session, kind: UserKind, user_id: int) -> PartnerUser | ClientUser | None:
    return db.get(PartnerUser, user_id) if kind == "partner_user" else db.get(ClientUser, user_id)


def factor_of(db: Session, kind: UserKind, user_id: int, *, lock: bool = False) -> TotpFactor | None:
    column = TotpFactor.partner_user_id if kind == "partner_user" else TotpFactor.client_user_id
    query = select(TotpFactor).where(column == user_id)
    if lock:
        query = query.with_for_update()
    return db.scalars(query).one_or_none()


def has_confirmed_factor(db: Session, kind: UserKind, user_id: int) -> bool:
    factor = factor_of(db, kind, user_id)
    return factor is not None and factor.confirmed_at is not None


def partner_requires_mfa(db: Session, partner_id: int) -> bool:
    rules = db.get(PartnerAccountRules, partner_id)
    return rules is not None and rules.require_mfa


def second_step(db: Session, user: PartnerUser | ClientUser) -> Purpose | None:
    """What a user whose password was right must still do: give a code, enrol, or nothing."""
    kind = kind_of(user)
    if has_confirmed_factor(db, kind, user.id):
        return "code"
    if isinstance(user, PartnerUser) and partner_requires_mfa(db, user.partner_id):
        return "enrol"
    return None


# Secrets and codes


def new_secret() -> str:
    return pyotp.random_base32()


def otpauth_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def new_recovery_codes() -> list[str]:
    """Ten codes such as `3f9a1-c07b2` (shown once; only their hashes are kept)."""
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(_normalised(code).encode()).hexdigest()


def _normalised(code: str) -> str:
    return "".join(ch for ch in code.strip().lower() if ch not in " -")


def replace_recovery_codes(db: Session, factor: TotpFactor) -> list[str]:
    db.execute(delete(RecoveryCode).where(RecoveryCode.factor_id == factor.id))
    codes = new_recovery_codes()
    db.add_all(RecoveryCode(factor_id=factor.id, code_hash=hash_recovery_code(code)) for code in codes)
    return codes


def code_opens(db: Session, vault: Vault, factor: TotpFactor, code: str, now: datetime) -> bool:
    """True when `code` is a TOTP code not used before or an unused recovery code of this factor;
    either is then used up. The factor's row should be locked (`factor_of(..., lock=True)`)."""
    given = _normalised(code)
    if not given or len(given) > 64:
        return False
    if given.isascii() and given.isdigit() and len(given) == DIGITS:
        return _totp_opens(vault, factor, given, now)
    if factor.confirmed_at is None:
        return False
    recovery = db.scalars(
        select(RecoveryCode)
        .where(
            RecoveryCode.factor_id == factor.id,
            RecoveryCode.code_hash == hash_recovery_code(given),
            RecoveryCode.used_at.is_(None),
        )
        .with_for_update()
    ).one_or_none()
    if recovery is None:
        return False
    recovery.used_at = now
    return True


def _totp_opens(vault: Vault, factor: TotpFactor, given: str, now: datetime) -> bool:
    try:
        totp = pyotp.TOTP(vault.open(factor.secret_sealed))
    except VaultError:
        return False
    present = totp.timecode(now)
    for step in range(present - DRIFT_STEPS, present + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), given):
            if factor.last_step is not None and step <= factor.last_step:
                return False  # this code (or a later one) was used already
            factor.last_step = step
            return True
    return False


def begin(db: Session, vault: Vault, user: PartnerUser | ClientUser, now: datetime) -> str | None:
    """A new secret for a factor not yet confirmed (one begun before is replaced); None when the
    user's TOTP is already on."""
    kind = kind_of(user)
    # The user's row first: with no factor yet, the factor's lock holds nothing, and two set-ups
    # at once would both insert one.
    model = PartnerUser if kind == "partner_user" else ClientUser
    lock_row(db, model, user.id)
    factor = factor_of(db, kind, user.id, lock=True)
    if factor is not None and factor.confirmed_at is not None:
        return None
    secret = new_secret()
    if factor is None:
        factor = TotpFactor(
            partner_user_id=user.id if kind == "partner_user" else None,
            client_user_id=user.id if kind == "client_user" else None,
            created_at=now,
            secret_sealed=vault.seal(secret),
        )
        db.add(factor)
    else:
        factor.secret_sealed, factor.created_at, factor.last_step = vault.seal(secret), now, None
    db.flush()
    return secret


def secret_of(vault: Vault, factor: TotpFactor) -> str:
    return vault.open(factor.secret_sealed)


def factor_digest(factor: TotpFactor) -> str:
    """A digest of the factor's sealed secret: it names this secret (a new one is sealed afresh)
    without telling it, so a signed cookie may carry it."""
    return hashlib.sha256(factor.secret_sealed.encode()).hexdigest()[:32]


def begun_here(step: Pending, factor: TotpFactor) -> bool:
    """Whether `factor` is the secret this pending sign-in's enrol page began (and showed)."""
    return bool(step.begun) and hmac.compare_digest(step.begun, factor_digest(factor))


def confirm(db: Session, vault: Vault, factor: TotpFactor, code: str, now: datetime) -> list[str] | None:
    """Turn a begun factor on with a code from the app; its recovery codes, or None (wrong code)."""
    if factor.confirmed_at is not None or not code_opens(db, vault, factor, code, now):
        return None
    factor.confirmed_at = now
    db.flush()
    codes = replace_recovery_codes(db, factor)
    db.flush()
    return codes

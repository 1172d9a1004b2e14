"""Server-side web sessions: the cookie carries a signed 256-bit session id, the table its hash.

The cookie is HttpOnly, SameSite=Lax, Secure when the site is served over https, and signed with
TENANTRY_SECRET_KEY, so a forged or altered cookie is rejected before any lookup. Each session has
its own CSRF token, sent in a hidden field of every form (or the `X-CSRF-Token` header when the
JSON API is called with the cookie instead of a key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from tenantry import lifecycle
from tenantry.auth import repository as repo
from tenantry.auth.principal import Principal
from tenantry.auth.secrets import hash_token
from tenantry.db.access_models import WebSession
from tenantry.db.models import Client, ClientUser, PartnerUser
from tenantry.policy import Capability

SESSION_COOKIE = "tenantry_session"
CSRF_COOKIE = "tenantry_csrf"  # for forms shown before signing in (double-submit)
SESSION_LIFETIME = timedelta(hours=12)


def sign(value: str, secret: str) -> str:
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return value + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def unsign(signed: str | None, secret: str) -> str | None:
    if not signed or "." not in signed:
        return None
    value = signed.rsplit(".", 1)[0]
    return value if hmac.compare_digest(sign(value, secret), signed) else None


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def start_session(
    db: Session,
    now: datetime,
    *,
    partner_user: PartnerUser | None = None,
    client_user: ClientUser | None = None,
) -> str:
    """Create a session for the user; return the session id for the cookie (never stored)."""
    repo.delete_expired_sessions(db, now)
    token = new_token()
    partner_id = partner_user.partner_id if partner_user is not None else None
    if client_user is not None:
        client = db.get(Client, client_user.client_id)
        assert client is not None
        partner_id = client.partner_id
    assert partner_id is not None
    db.add(
        WebSession(
            token_hash=hash_token(token),
            csrf_token=new_token(),
            partner_id=partner_id,
            partner_user_id=partner_user.id if partner_user is not None else None,
            client_user_id=client_user.id if client_user is not None else None,
            created_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
    )
    return token


@dataclass(frozen=True)
class SignedIn:
    """A valid session and who it belongs to."""

    row: repo.SessionRow

    @property
    def session(self) -> WebSession:
        return self.row.session

    @property
    def csrf_token(self) -> str:
        return self.row.session.csrf_token

    @property
    def is_partner(self) -> bool:
        return self.row.partner_user is not None

    @property
    def user(self) -> PartnerUser | ClientUser:
        user = self.row.partner_user or self.row.client_user
        assert user is not None
        return user

    @property
    def principal(self) -> Principal:
        """The user itself; "sign in as" changes what the portal shows, not who calls the API."""
        if self.row.partner_user is not None:
            u = self.row.partner_user
            return Principal("partner_user", u.partner_id, u.id, u.role)
        assert self.row.client_user is not None and self.row.client is not None
        c = self.row.client_user
        return Principal("client_user", self.row.client.partner_id, c.id, c.role, self.row.client.id)


def resolve(db: Session, token: str, now: datetime, host_partner_id: int | None = None) -> SignedIn | None:
    """The session named by a cookie's id, if it exists and has not expired.

    A client user's session is checked against the client's status on every request: once the
    client is disabled or its trial has ended, `check_client_access` refuses it.

    On a partner's own domain (`host_partner_id`, the partner the request's host belongs to) only
    that partner's sessions count: another partner's session there is no session at all, so a
    cookie carried from one partner's domain to another's signs no one in.
    """
    row = repo.find_session(db, token, now)
    if row is None or (host_partner_id is not None and row.session.partner_id != host_partner_id):
        return None
    return SignedIn(row)


def check_still_allowed(signed_in: SignedIn, now: datetime) -> None:
    if signed_in.row.client is not None:
        repo.check_client_access(Capability.USER_SIGN_IN, lifecycle.client_status(signed_in.row.client, now))

"""Tables for signing in: web sessions, invitations, and the password attempts the throttle counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class WebSession(Base):
    """A signed-in browser. Only a hash of the session id is stored: a leaked table signs no one in."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    partner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_users.id", ondelete="CASCADE"), index=True
    )
    client_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_users.id", ondelete="CASCADE"), index=True
    )
    # "Sign in as": the client a partner user has entered, and how (admin or view_only).
    acting_client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    acting_mode: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(partner_user_id IS NULL) <> (client_user_id IS NULL)", name="one_user"),
        CheckConstraint("acting_mode IS NULL OR acting_mode in ('admin', 'view_only')", name="acting_mode"),
    )

    @property
    def view_only(self) -> bool:
        """In a client in view-only mode: nothing may be changed. Only while in that client: once
        it is deleted (`acting_client_id` set to NULL with it) the user is back in the console,
        where the mode no longer applies."""
        return self.acting_client_id is not None and self.acting_mode == "view_only"


class Invitation(Base):
    """A one-time link to set a password; only a hash of the token is stored."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    partner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_users.id", ondelete="CASCADE"), index=True
    )
    client_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("(partner_user_id IS NULL) <> (client_user_id IS NULL)", name="one_user"),
    )


class PasswordAttempt(Base):
    """One password attempt counted against a throttled scope (auth.throttle).

    The row is written *before* the password is checked and stays as a failure unless the password
    turns out right. Scopes are hashes (`kind:sha256`): no e-mail address, client address or link
    is stored here in the clear. The id is random, so it tells nothing and is never reused.
    """

    __tablename__ = "password_attempts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_password_attempts_scope_at", "scope", "at"),
        Index("ix_password_attempts_at", "at"),
    )


class PasswordLockout(Base):
    """A scope that reached its limit of failures: no password is checked for it until then."""

    __tablename__ = "password_lockouts"

    scope: Mapped[str] = mapped_column(String(100), primary_key=True)
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

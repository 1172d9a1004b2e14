"""Tables for signing in: web sessions, invitations and failed sign-in attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.models import Base, UTCDateTime, _ids


class WebSession(Base):
    """A signed-in browser. Only a hash of the session id is stored: a leaked table signs no one in."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(_ids, primary_key=True)
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


class Invitation(Base):
    """A one-time link to set a password; only a hash of the token is stored."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(_ids, primary_key=True)
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


class SignInFailure(Base):
    """One failed sign-in, per throttled scope (`account:<email>` or `address:<ip>`)."""

    __tablename__ = "sign_in_failures"

    id: Mapped[int] = mapped_column(_ids, primary_key=True)
    scope: Mapped[str] = mapped_column(String(300))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_sign_in_failures_scope_at", "scope", "at"),)

"""Tables for recovering and guarding accounts (SPEC §18): password-reset links, TOTP second
factors with their recovery codes, and a partner's account rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class PasswordReset(Base):
    """A one-time link to choose a new password; only a hash of the token is stored."""

    __tablename__ = "password_resets"

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
        {"sqlite_autoincrement": True},
    )


class TotpFactor(Base):
    """A user's TOTP secret (sealed by the vault). It guards sign-in once `confirmed_at` is set;
    `last_step` is the newest time step used, so one code never signs in twice."""

    __tablename__ = "totp_factors"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("partner_users.id", ondelete="CASCADE"), unique=True
    )
    client_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("client_users.id", ondelete="CASCADE"), unique=True
    )
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_step: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("(partner_user_id IS NULL) <> (client_user_id IS NULL)", name="one_user"),
        {"sqlite_autoincrement": True},
    )


class RecoveryCode(Base):
    """One single-use code that stands in for a TOTP code; only its hash is stored."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    factor_id: Mapped[int] = mapped_column(ForeignKey("totp_factors.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = ({"sqlite_autoincrement": True},)


class PartnerAccountRules(Base):
    """How a partner's own users sign in: `require_mfa` makes a TOTP second factor mandatory."""

    __tablename__ = "partner_account_rules"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True)
    require_mfa: Mapped[bool] = mapped_column(Boolean, default=False)

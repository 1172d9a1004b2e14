"""Partners' own domains (SPEC §16): a host name that serves one partner's sign-in, portal and
published links once the operator has verified it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class PartnerDomain(Base):
    """A partner's host name: lower-case, without a trailing dot, IDNs in their punycode form,
    unique across all partners."""

    __tablename__ = "partner_domains"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    hostname: Mapped[str] = mapped_column(String(253), unique=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = ({"sqlite_autoincrement": True},)

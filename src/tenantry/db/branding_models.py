"""Tables of partners' brands (SPEC §16): a partner's names, colours and logo, clients' own logos,
and the re-encoded logo images themselves, stored once per content."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class Branding(Base):
    """A partner's brand; without a row the product's own brand applies."""

    __tablename__ = "brandings"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), unique=True)
    product_name: Mapped[str] = mapped_column(String(100))
    primary_color: Mapped[str] = mapped_column(String(7))
    accent_color: Mapped[str | None] = mapped_column(String(7))
    email_from_name: Mapped[str | None] = mapped_column(String(100))
    support_email: Mapped[str | None] = mapped_column(String(254))
    footer_text: Mapped[str | None] = mapped_column(String(500))
    # The sha256 of the partner's logo in `brand_logos`.
    logo_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = ({"sqlite_autoincrement": True},)


class ClientLogo(Base):
    """A client's own logo, shown in its portal before the partner's."""

    __tablename__ = "client_logos"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), unique=True)
    logo_sha256: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = ({"sqlite_autoincrement": True},)


class BrandLogo(Base):
    """A logo as the server re-encoded it (PNG, no metadata), addressed by the sha256 of its bytes:
    its address never changes what it serves, so it is cached for good."""

    __tablename__ = "brand_logos"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = ({"sqlite_autoincrement": True},)

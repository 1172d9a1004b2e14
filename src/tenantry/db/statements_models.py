"""Tables for statements: the history of the terms a partner's statements are cut and priced with,
and what is kept of a deleted client."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class TermsChange(Base):
    """Append-only snapshot of a partner's timezone, currency and prices, one per change.

    Statements read the snapshot in force for each month and day, so changing the terms never
    rewrites a month that is already over.
    """

    __tablename__ = "terms_changes"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    timezone: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(3))
    dashboard_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    user_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    actor: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_terms_changes_partner_at", "partner_id", "at"),)


class DeletedClient(Base):
    """What is kept of a deleted client for its statements: its name, and when it went.

    Its status and allocation histories stay where they are, so a month that has ended never
    changes; the month of the deletion counts the client up to that instant and no further.
    """

    __tablename__ = "deleted_clients"

    # The client's own id (never handed out again), not a new one.
    id: Mapped[int] = mapped_column(ids, primary_key=True, autoincrement=False)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    external_id: Mapped[str | None] = mapped_column(String(200))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))

    __table_args__ = (Index("ix_deleted_clients_partner_deleted_at", "partner_id", "deleted_at"),)


class ClientRename(Base):
    """A client's name before a rename, and when it changed: a statement names a client as it was
    named when its month ended, so renaming one never changes a month that is already over.

    Only renames leave a row; a client never renamed is named by its present name everywhere. Kept
    after the client is deleted, with its other histories.
    """

    __tablename__ = "client_renames"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # No foreign key: the history outlives a deleted client, as its status history does.
    client_id: Mapped[int] = mapped_column(ids)
    old_name: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_client_renames_partner_at", "partner_id", "at"),)

"""Tables of scheduled e-mail reports (SPEC §17): the schedules, and one run per schedule and slot."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


def _the_creator(context: Any) -> Any:
    return context.get_current_parameters()["created_by"]


class ReportSchedule(Base):
    """A dashboard e-mailed at its slots. Claimed by a worker with a lease when `next_run_at` has
    come, like a data-source refresh."""

    __tablename__ = "report_schedules"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    # The dashboard's owner, copied: NULL for the partner's own dashboards.
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    dashboard_id: Mapped[int] = mapped_column(ForeignKey("dashboards.id", ondelete="CASCADE"), index=True)
    frequency: Mapped[str] = mapped_column(String(16))
    weekday: Mapped[int | None] = mapped_column(Integer)
    day_of_month: Mapped[int | None] = mapped_column(Integer)
    # Local time of day, "HH:MM", in `timezone` (an IANA name).
    time: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(8))
    # Users of the dashboard's account; their address is read at each slot.
    recipient_user_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    recipient_emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    subject: Mapped[str | None] = mapped_column(String(200))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(64))
    # Who set `recipient_emails` (as `Principal.actor` names them): the addresses outside the
    # account are sent only while that user is a partner admin or editor, and count against that
    # user's e-mails a day, not against the creator's when someone else added them. The creator
    # unless told otherwise.
    emails_set_by: Mapped[str] = mapped_column(String(64), default=_the_creator)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Due schedules in the order a claim takes them when it looks past each partner's first
        # (`db.leases`): many are due at the same minute, so the id is part of the order.
        Index("ix_report_schedules_due", "next_run_at", "id"),
        Index("ix_report_schedules_partner_id_id", "partner_id", "id"),
        # Each partner's due schedules, longest-waiting first (`db.leases`).
        Index("ix_report_schedules_partner_due", "partner_id", "next_run_at", "id"),
        CheckConstraint("frequency in ('daily', 'weekly', 'monthly')", name="frequency"),
        CheckConstraint("format in ('pdf', 'png')", name="format"),
        {"sqlite_autoincrement": True},
    )


class ReportRun(Base):
    """What happened at one slot of a schedule. The unique (schedule, slot) pair is claimed before
    anything is sent: however many workers race for a slot, one run is written and one e-mail sent."""

    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("report_schedules.id", ondelete="CASCADE"))
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    slot: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Sent after its slot had passed by more than a short grace, or after earlier slots were missed.
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    watermark: Mapped[bool] = mapped_column(Boolean, default=False)
    # The e-mail written to the outbox: if it fails for good, the run becomes `failed`.
    mail_id: Mapped[int | None] = mapped_column(ids, index=True)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("schedule_id", "slot"),
        CheckConstraint("status in ('sent', 'skipped', 'failed')", name="status"),
        {"sqlite_autoincrement": True},
    )

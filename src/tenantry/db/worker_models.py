"""Tables of the background worker: webhooks, deliveries of events, sent trial notices, and the
outbox of e-mails written by requests and sent by the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, UTCDateTime, ids


class Webhook(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    # Event types this webhook receives; empty: every type.
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Kept as-is, not hashed: every delivery is signed with it (see README, "Webhooks").
    secret: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_webhooks_partner_id_id", "partner_id", "id"),)


class EventDelivery(Base):
    """One event on its way to one webhook, or by e-mail to the partner's admins.

    Claimed by a worker with a lease, like a data-source refresh; retried with backoff until it
    succeeds or its retry window closes.
    """

    __tablename__ = "event_deliveries"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    # NULL for e-mail.
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_event_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_event_deliveries_webhook_id", "webhook_id", "id"),
        Index("ix_event_deliveries_event_id", "event_id"),
        # Each partner's pending deliveries, longest-waiting first (`db.leases`).
        Index("ix_event_deliveries_partner_due", "partner_id", "status", "next_attempt_at", "id"),
        CheckConstraint("channel in ('webhook', 'email')", name="channel"),
        CheckConstraint("status in ('pending', 'delivered', 'failed', 'logged')", name="status"),
    )


class TrialNotice(Base):
    """A trial event already written to the outbox, one per client, kind and trial end.

    The primary key makes each notice exactly-once however many workers race for it; an
    extension moves the end, so the new end gets its own `will_end` notice.
    """

    __tablename__ = "trial_notices"

    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    trial_ends_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint("kind in ('will_end', 'ended')", name="kind"),)


class OutboxMail(Base):
    """An e-mail a request asked for (a dashboard, an invitation), written in the request's
    transaction and sent by the worker after commit, outside every lock.

    Claimed with a lease like a delivery, retried with backoff for 24 hours; a permanent failure
    is `failed` at once. Once settled (sent, failed or logged) its body and attachment are
    dropped: an invitation's link is a secret and is not kept. The rows also count each user's
    dashboard e-mails of the last 24 hours.
    """

    __tablename__ = "mail_outbox"

    id: Mapped[int] = mapped_column(ids, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    # Who asked for it (`Principal.actor`).
    sent_by: Mapped[str] = mapped_column(String(64))
    recipients: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The recipients counted against `sent_by`'s daily allowance of dashboard e-mails: all of a
    # message sent by hand, those outside the account of a scheduled report.
    recipient_count: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    # The HTML part in the partner's brand, and the sender's display name (its brand's).
    html: Mapped[str | None] = mapped_column(Text)
    from_name: Mapped[str | None] = mapped_column(String(200))
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary)
    attachment_name: Mapped[str | None] = mapped_column(String(200))
    attachment_type: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_mail_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_mail_outbox_sent_by", "sent_by", "kind", "created_at"),
        # Each partner's pending messages, longest-waiting first (`db.leases`); it also serves
        # what looks a partner's messages up by partner alone.
        Index("ix_mail_outbox_partner_due", "partner_id", "status", "next_attempt_at", "id"),
        CheckConstraint("kind in ('dashboard', 'invitation', 'password_reset')", name="kind"),
        CheckConstraint("status in ('pending', 'delivered', 'failed', 'logged')", name="status"),
    )

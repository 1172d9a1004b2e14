"""The e-mail outbox's use cases: queue a message in the caller's transaction, count a user's
dashboard e-mails, and claim and settle the worker's attempts. Services flush, never commit.

A request never talks to the mail server: it writes the message here, and the worker sends it
after the request has committed, outside every lock (an SMTP server that never answers used to
hold the request, and the partner's lock, for its whole timeout). Without SMTP settings there is
nothing to queue for: the message is written to the log at once and the caller is told so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil

from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.backoff import backoff
from tenantry.db.leases import Shares
from tenantry.db.worker_models import OutboxMail
from tenantry.emails import repository as repo
from tenantry.errors import EmailLimitReached
from tenantry.mail import Attachment, Delivery, Mail, Mailer, one_line

RETRY_WINDOW = timedelta(hours=24)
RETRY_FIRST = timedelta(seconds=30)
RETRY_LONGEST = timedelta(hours=1)

# SPEC §12 "Who reads what": every user e-mails dashboards to at most 50 recipients a day.
DASHBOARD_EMAILS_PER_DAY = 50
DAY = timedelta(hours=24)


@dataclass(frozen=True)
class Queued:
    """What the caller is told: queued for the worker, or (without SMTP) logged and why."""

    queued: bool
    delivered: bool = False
    reason: str | None = None
    # The outbox row, for a caller that follows what becomes of it (a scheduled report's run).
    mail_id: int | None = None


def queue(
    db: Session,
    mailer: Mailer,
    now: datetime,
    mail: Mail,
    *,
    partner_id: int,
    kind: str,
    sent_by: str,
    held_by: tuple[str, datetime] | None = None,
    counted: int | None = None,
    flush: bool = True,
) -> Queued:
    """Write `mail` to the outbox, in the caller's transaction (so it is sent only if that commits).

    `counted`: how many of its recipients count against `sent_by`'s daily allowance of dashboard
    e-mails (`require_daily_room`); all of them unless told.

    `held_by` (a worker's id and a time): the row is written already leased to that worker until
    then, so that the worker sends it itself, at once, and no other claims it meanwhile; if the
    worker dies first, the lease runs out and the message is claimed like any other.

    `flush=False`: the row is written with the caller's next flush (an import queues thousands,
    written together), and `mail_id` is None.
    """
    row = OutboxMail(
        partner_id=partner_id,
        kind=kind,
        sent_by=sent_by,
        recipients=list(mail.to),
        recipient_count=len(mail.to) if counted is None else counted,
        subject=one_line(mail.subject),
        text=mail.text,
        html=mail.html,
        from_name=mail.from_name,
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
    )
    if mail.attachments:
        (attachment,) = mail.attachments  # one file per message: the dashboard
        row.attachment = attachment.data
        row.attachment_name = attachment.filename
        row.attachment_type = attachment.content_type
    if not mailer.delivers:
        # No SMTP server: the log is where the message goes, now (secret links redacted), and the
        # row keeps only what it was, not what it said.
        delivery = mailer.send(mail)
        row.status, row.next_attempt_at, row.last_error = "logged", None, delivery.reason
        _drop_body(row)
        db.add(row)
        if flush:
            db.flush()
        return Queued(False, False, delivery.reason, row.id)
    if held_by is not None:
        row.lease_owner, row.lease_expires_at = held_by
    db.add(row)
    if flush:
        db.flush()
    return Queued(True, mail_id=row.id)


def require_daily_room(
    db: Session, principal: Principal, now: datetime, recipients: int, *, lock: bool = True
) -> None:
    """Refuse (429 `email_limit_reached`, with `Retry-After`) an e-mail of a dashboard that would
    take the user past 50 recipients in 24 hours. One user's requests are serialised for this
    (`lock`; without it, a check made ahead of the one that counts)."""
    if lock:
        repo.lock_sender(db, principal)
    require_room_of(db, principal.actor, now, recipients)


def require_room_of(db: Session, actor: str, now: datetime, recipients: int) -> None:
    """`require_daily_room` for the user `actor` names (`Principal.actor`), whose sending the caller
    has serialised (`repository.lock_actor`)."""
    sent = repo.sent_since(db, actor, "dashboard", now - DAY)
    used = sum(count for _, count in sent)
    if used + recipients <= DASHBOARD_EMAILS_PER_DAY:
        return
    # Room comes back as the oldest messages leave the 24-hour window.
    needed, freed, wait = used + recipients - DASHBOARD_EMAILS_PER_DAY, 0, DAY
    for at, count in sent:
        freed += count
        if freed >= needed:
            wait = at + DAY - now
            break
    seconds = max(1, ceil(wait.total_seconds()))
    left = max(0, DASHBOARD_EMAILS_PER_DAY - used)
    raise EmailLimitReached(
        f"You can e-mail dashboards to at most {DASHBOARD_EMAILS_PER_DAY} recipients a day; "
        f"{left} are left for now. Try again in {_duration(seconds)}.",
        headers={"Retry-After": str(seconds)},
        limit=DASHBOARD_EMAILS_PER_DAY,
        remaining=left,
    )


def _duration(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 2 * 3600:
        return f"{ceil(seconds / 60)} minutes"
    return f"{ceil(seconds / 3600)} hours"


# The worker's side


@dataclass(frozen=True)
class MailJob:
    """One attempt, read in the claiming transaction."""

    id: int
    partner_id: int
    kind: str
    mail: Mail
    claimed_at: datetime


def claim_mail_jobs(
    db: Session, worker_id: str, now: datetime, lease: timedelta, limit: int, shares: Shares | None = None
) -> list[MailJob]:
    rows = repo.claim(db, worker_id, now, now + lease, limit, shares or Shares(limit))
    return [MailJob(r.id, r.partner_id, r.kind, _mail_of(r), now) for r in rows]


def _mail_of(row: OutboxMail) -> Mail:
    attachments = []
    if row.attachment is not None and row.attachment_name and row.attachment_type:
        attachments.append(Attachment(row.attachment_name, row.attachment_type, row.attachment))
    return Mail(
        to=list(row.recipients),
        subject=row.subject,
        text=row.text,
        html=row.html,
        attachments=attachments,
        from_name=row.from_name,
    )


def settle_mail(
    db: Session, job: MailJob, worker_id: str, now: datetime, delivery: Delivery, logged: bool
) -> str:
    """Record one attempt; return the message's status (`pending`: it will be retried, `lost`:
    the lease had passed to another worker, whose result counts).

    Transient failures are retried with backoff until 24 hours after the message was queued; a
    permanent one is `failed` at once. A settled message keeps no body or attachment.
    """
    if delivery.delivered or logged:  # the common end, in one statement
        status = "delivered" if delivery.delivered else "logged"
        return status if repo.settle_done(db, job.id, worker_id, now, status, delivery.reason) else "lost"
    row = repo.leased(db, job.id, worker_id)
    if row is None:
        return "lost"
    row.attempts += 1
    row.last_attempt_at = now
    row.last_error = delivery.reason
    row.lease_owner = row.lease_expires_at = None
    if delivery.permanent or now >= row.created_at + RETRY_WINDOW:
        row.status, row.next_attempt_at = "failed", None
    else:
        wait = backoff(RETRY_FIRST, row.attempts, RETRY_LONGEST)
        row.next_attempt_at = min(now + wait, row.created_at + RETRY_WINDOW)
    if row.status != "pending":
        _drop_body(row)
    db.flush()
    return row.status


def _drop_body(row: OutboxMail) -> None:
    """Once the message is settled, keep none of its body (`repo.DROPPED_BODY`)."""
    for column, value in repo.DROPPED_BODY.items():
        setattr(row, column, value)

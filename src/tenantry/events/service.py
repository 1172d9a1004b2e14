"""The outbox's use cases: write trial notices, fan events out, settle each delivery attempt.

Services flush, never commit: the worker's transaction around each step commits. Sending (HTTP,
SMTP) happens between two transactions, never inside one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from tenantry.audit import emit
from tenantry.backoff import backoff
from tenantry.branding import DEFAULT_BRAND, Brand, brand_for, email_html
from tenantry.clients.schemas import event_client
from tenantry.db.leases import Shares
from tenantry.db.models import Event
from tenantry.db.worker_models import EventDelivery, Webhook
from tenantry.domains import partner_base_url
from tenantry.events import repository as repo
from tenantry.mail import Mail, one_line
from tenantry.settings import Settings
from tenantry.webhooks import sending

STATUS_CHANGED = "client.status_changed"
TRIAL_WILL_END = "client.trial_will_end"
TRIAL_ENDED = "client.trial_ended"
EVENT_TYPES = (
    STATUS_CHANGED,
    "client.trial_extended",
    TRIAL_WILL_END,
    TRIAL_ENDED,
    "client.deleted",
    "template.deployed",
    "template.updated",
    "report.sent",
    "report.failed",
)
# These also reach the partner's admins by e-mail.
MAILED = frozenset({STATUS_CHANGED, TRIAL_WILL_END, TRIAL_ENDED})
_TRIAL_KINDS = (("will_end", TRIAL_WILL_END), ("ended", TRIAL_ENDED))

RETRY_WINDOW = timedelta(hours=24)
RETRY_FIRST = timedelta(seconds=30)
RETRY_LONGEST = timedelta(hours=1)


def emit_trial_events(db: Session, now: datetime, limit: int = 100) -> list[str]:
    """Write each due trial notice to the outbox once; return the types written.

    `client.trial_will_end` is due 3 days before the end (at once when less is left), for each
    end the trial has had: an extension moves the end, and the new end gets its own notice.
    """
    written = []
    for kind, event_type in _TRIAL_KINDS:
        for client in repo.trials_due(db, kind, now, limit):
            ends_at = client.trial_ends_at
            assert ends_at is not None  # trials_due selects only clients with an end
            if not repo.record_notice(db, client.id, kind, ends_at, now):
                continue
            emit(
                db,
                partner_id=client.partner_id,
                client_id=client.id,
                type=event_type,
                at=now,
                data={
                    "client": event_client(client, now),
                    "ends_at": ends_at.isoformat(),
                },
            )
            written.append(event_type)
    db.flush()
    return written


def _pending(event: Event, channel: str, now: datetime, **fields: Any) -> EventDelivery:
    return EventDelivery(
        partner_id=event.partner_id,
        event_id=event.id,
        event_type=event.type,
        channel=channel,
        status="pending",
        attempts=0,
        created_at=now,
        next_attempt_at=now,
        **fields,
    )


DISPATCH_BATCH = 100  # events fanned out per call at most


def dispatch_events(db: Session, now: datetime, limit: int = DISPATCH_BATCH) -> int:
    """Give each new event a delivery per matching webhook of its partner, and one e-mail to
    the partner's admins for the types they are told about."""
    events = repo.claim_undispatched(db, limit)
    hooks: dict[int, Sequence[Webhook]] = {}  # read once per partner, not once per event
    admins_of: dict[int, list[str]] = {}
    for event in events:
        if event.partner_id not in hooks:
            hooks[event.partner_id] = repo.webhooks_of(db, event.partner_id)
        for hook in hooks[event.partner_id]:
            if not hook.events or event.type in hook.events:
                db.add(_pending(event, "webhook", now, webhook_id=hook.id, recipients=[]))
        if event.type in MAILED:
            if event.partner_id not in admins_of:
                admins_of[event.partner_id] = repo.admin_emails(db, event.partner_id)
            admins = admins_of[event.partner_id]
            if admins:
                db.add(_pending(event, "email", now, webhook_id=None, recipients=admins))
    db.flush()
    repo.mark_dispatched(db, [event.id for event in events], now)
    return len(events)


@dataclass(frozen=True)
class DeliveryJob:
    """Everything one attempt needs, read in the claiming transaction."""

    id: int
    partner_id: int
    channel: str
    event_id: str
    event_type: str
    claimed_at: datetime
    url: str | None = None
    # Not in the repr: a job may be shown in a traceback, and the secret signs every delivery.
    secret: str | None = field(default=None, repr=False)
    body: bytes = b""
    mail: Mail | None = None


def claim_delivery_jobs(
    db: Session,
    worker_id: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    shares: Shares | None = None,
    settings: Settings | None = None,
) -> list[DeliveryJob]:
    """Lease up to `limit` due deliveries to `worker_id`, each made ready to send: a webhook's
    signed body, or an e-mail in its partner's brand (its logo loaded from the partner's public
    address, which `settings` give)."""
    deliveries = repo.claim_deliveries(db, worker_id, now, now + lease, limit, shares or Shares(limit))
    events = repo.events_by_id(db, {d.event_id for d in deliveries})
    hooks = repo.webhooks_by_id(db, {d.webhook_id for d in deliveries if d.webhook_id is not None})
    jobs = []
    for delivery in deliveries:
        event = events[delivery.event_id]
        job = DeliveryJob(delivery.id, delivery.partner_id, delivery.channel, event.id, event.type, now)
        if delivery.channel == "email":
            brand = brand_for(db, delivery.partner_id)
            base = None if settings is None else partner_base_url(db, settings, delivery.partner_id)
            jobs.append(replace(job, mail=mail_for(event, delivery.recipients, brand, base)))
            continue
        hook = hooks[delivery.webhook_id]  # type: ignore[index]
        raw = sending.body(event.id, event.type, event.created_at.isoformat(), event.data)
        jobs.append(replace(job, url=hook.url, secret=hook.secret, body=raw))
    return jobs


def settle_delivery(
    db: Session,
    job: DeliveryJob,
    worker_id: str,
    now: datetime,
    *,
    ok: bool,
    status_code: int | None = None,
    error: str | None = None,
    logged: bool = False,
    permanent: bool = False,
) -> str:
    """Record one attempt; return the delivery's status (`pending` means it will be retried).

    A failure is retried with exponential backoff until 24 hours after the event was fanned
    out; the last attempt falls at the end of that window, then the delivery is given up. A
    permanent failure (a refused address, a recipient refused for good, a header that cannot be
    built) is given up at once.
    """
    delivery = repo.leased_delivery(db, job.id, worker_id)
    if delivery is None:  # the lease expired and another worker took over: its result counts
        return "lost"
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.last_status_code = status_code
    delivery.last_error = error
    delivery.lease_owner = delivery.lease_expires_at = None
    deadline = delivery.created_at + RETRY_WINDOW
    if ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", now, None
    elif logged:
        # No SMTP server is configured: the message went to the log, and retrying cannot help.
        delivery.status, delivery.next_attempt_at = "logged", None
    elif permanent or now >= deadline:
        delivery.status, delivery.next_attempt_at = "failed", None
    else:
        wait = backoff(RETRY_FIRST, delivery.attempts, RETRY_LONGEST)
        delivery.next_attempt_at = min(now + wait, deadline)
    db.flush()
    return delivery.status


def mail_for(
    event: Event, recipients: list[str], brand: Brand = DEFAULT_BRAND, base_url: str | None = None
) -> Mail:
    """The notice of an event, to the partner's admins, in the partner's brand (its logo shown
    when `base_url`, the partner's public address, is given)."""
    client = event.data.get("client") or {}
    name = one_line(str(client.get("name") or "")) or f"client {event.client_id}"
    if event.type == TRIAL_WILL_END:
        days = (client.get("trial") or {}).get("days_remaining")
        subject = f"The trial of {name} ends in {days} day{'s' if days != 1 else ''}"
        text = (
            f"The trial of your client {name} ends at {event.data.get('ends_at')}.\n"
            "Activate the client to keep its dashboards, users and published links working."
        )
    elif event.type == TRIAL_ENDED:
        subject = f"The trial of {name} has ended"
        text = (
            f"The trial of your client {name} ended at {event.data.get('ends_at')}.\n"
            "Its users can no longer sign in and its data sources no longer refresh until you "
            "activate it."
        )
    else:
        before, after = event.data.get("from"), event.data.get("to")
        subject = f"{name} is now {str(after).capitalize()}"
        if before is None:
            text = f"Your client {name} was created in {str(after).capitalize()} mode."
        else:
            text = f"The status of your client {name} changed from {before} to {after}."
    text = f"{text}\n\n{brand.product_name} · event {event.id}\n"
    return Mail(
        to=list(recipients),
        subject=subject,
        text=text,
        html=email_html(brand, text, base_url=base_url),
        from_name=brand.sender_name,
    )

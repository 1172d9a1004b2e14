"""Webhook use cases: subscribe, list, read the delivery log, unsubscribe. Services flush, never commit."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy.orm import Session

from tenantry.audit import audit
from tenantry.auth.principal import Principal
from tenantry.clock import Clock
from tenantry.db.worker_models import EventDelivery, Webhook
from tenantry.limits import WEBHOOKS_PER_PARTNER, check_room
from tenantry.outbound import Guard
from tenantry.partners import repository as partners_repo
from tenantry.webhooks import repository as repo
from tenantry.webhooks.schemas import WebhookCreate


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def create_webhook(
    db: Session, clock: Clock, principal: Principal, data: WebhookCreate, guard: Guard
) -> Webhook:
    principal.require_write()
    # Deliveries go through the outgoing-request guard; a URL it would always refuse is refused now.
    guard.require_allowed(str(data.url))
    now = clock.now()
    # Under the partner lock, so concurrent requests cannot both take the last place.
    partners_repo.lock_partner(db, principal.partner_id)
    check_room(WEBHOOKS_PER_PARTNER, repo.count_webhooks(db, principal.partner_id))
    webhook = Webhook(
        partner_id=principal.partner_id,
        url=str(data.url),
        events=data.events or [],
        secret=new_secret(),
        created_by=principal.actor,
        created_at=now,
    )
    db.add(webhook)
    db.flush()
    _audit(db, principal, webhook, "webhook.created", clock)
    return webhook


def webhooks_of(db: Session, principal: Principal, limit: int, offset: int) -> tuple[Sequence[Webhook], int]:
    """The partner's webhooks, oldest first, and how many there are."""
    return repo.list_webhooks(db, principal, limit, offset)


def deliveries_of(
    db: Session, principal: Principal, webhook_id: int, limit: int, offset: int
) -> tuple[Sequence[EventDelivery], int]:
    """A webhook's delivery log, newest first, and how many deliveries there are."""
    return repo.list_deliveries(db, repo.get_webhook(db, principal, webhook_id), limit, offset)


def delete_webhook(db: Session, clock: Clock, principal: Principal, webhook_id: int) -> None:
    """Remove the webhook and its delivery log; attempts not yet made are dropped with it."""
    # Another partner's: 404 before the role's 403. Held, so requests deleting it at once take turns.
    webhook = repo.get_webhook(db, principal, webhook_id, lock=True)
    principal.require_write()
    _audit(db, principal, webhook, "webhook.deleted", clock)
    db.delete(webhook)
    db.flush()


def _audit(db: Session, principal: Principal, webhook: Webhook, action: str, clock: Clock) -> None:
    audit(
        db,
        partner_id=webhook.partner_id,
        actor=principal.actor,
        action=action,
        target=f"webhook:{webhook.id}",
        at=clock.now(),
        details={"url": webhook.url, "events": webhook.events},
    )

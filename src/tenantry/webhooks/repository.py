"""All SQL about webhooks. Every lookup goes through `scoped_webhooks`."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.worker_models import EventDelivery, Webhook
from tenantry.errors import NotFound


def scoped_webhooks(principal: Principal) -> Select[Webhook]:
    """The webhooks of the caller's partner: another partner's webhook is not found (404)."""
    return select(Webhook).where(Webhook.partner_id == principal.partner_id)


def get_webhook(db: Session, principal: Principal, webhook_id: int, *, lock: bool = False) -> Webhook:
    """A webhook of the caller's partner (else 404); with `lock`, held until the transaction ends."""
    query = scoped_webhooks(principal).where(Webhook.id == webhook_id)
    if lock:
        query = query.with_for_update(of=Webhook)
    webhook = db.scalars(query).one_or_none()
    if webhook is None:
        raise NotFound(f"No webhook {webhook_id}.")
    return webhook


def count_webhooks(db: Session, partner_id: int) -> int:
    return db.scalar(select(func.count()).select_from(Webhook).where(Webhook.partner_id == partner_id)) or 0


def list_webhooks(
    db: Session, principal: Principal, limit: int, offset: int
) -> tuple[Sequence[Webhook], int]:
    query = scoped_webhooks(principal)
    items = db.scalars(query.order_by(Webhook.id).limit(limit).offset(offset)).all()
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    return items, total


def list_deliveries(
    db: Session, webhook: Webhook, limit: int, offset: int
) -> tuple[Sequence[EventDelivery], int]:
    where = EventDelivery.webhook_id == webhook.id
    items = db.scalars(
        select(EventDelivery).where(where).order_by(EventDelivery.id.desc()).limit(limit).offset(offset)
    ).all()
    total = db.scalar(select(func.count()).select_from(EventDelivery).where(where)) or 0
    return items, total

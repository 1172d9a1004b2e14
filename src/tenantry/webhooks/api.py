"""Webhook endpoints (SPEC §9). Partner keys only; viewers read."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from tenantry.api.deps import ClockDep, DbSession, GuardDep, PageDep, PartnerCaller, PathId
from tenantry.db.worker_models import Webhook
from tenantry.webhooks import repository as repo
from tenantry.webhooks import service
from tenantry.webhooks.schemas import (
    DeliveryList,
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)

router = APIRouter(prefix="/api/1/webhooks", tags=["webhooks"])


def _out(webhook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(webhook, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def create_webhook(
    body: WebhookCreate, db: DbSession, clock: ClockDep, caller: PartnerCaller, guard: GuardDep
) -> WebhookCreated:
    """Subscribe a URL to events; the answer carries the signing secret, shown only this once."""
    webhook = service.create_webhook(db, clock, caller, body, guard)
    return WebhookCreated.model_validate(webhook, from_attributes=True)


@router.get("", response_model=WebhookList)
def list_webhooks(db: DbSession, caller: PartnerCaller, page: PageDep) -> WebhookList:
    """The partner's webhooks, oldest first (without their secrets)."""
    items, total = repo.list_webhooks(db, caller, page.limit, page.offset)
    return WebhookList(items=[_out(w) for w in items], total=total, limit=page.limit, offset=page.offset)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: PathId, db: DbSession, clock: ClockDep, caller: PartnerCaller) -> Response:
    """Remove a webhook and its delivery log."""
    service.delete_webhook(db, clock, caller, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
def list_deliveries(webhook_id: PathId, db: DbSession, caller: PartnerCaller, page: PageDep) -> DeliveryList:
    """The webhook's delivery log, newest first: each event's status, attempts and last answer."""
    items, total = repo.list_deliveries(db, repo.get_webhook(db, caller, webhook_id), page.limit, page.offset)
    return DeliveryList(
        items=[DeliveryOut.model_validate(d, from_attributes=True) for d in items],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )

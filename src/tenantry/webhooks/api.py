"""Webhook endpoints (SPEC §9). Partner keys only; viewers read."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from tenantry.api.deps import ClockDep, GuardDep, PageDep, PartnerCaller, PathId, WorkDep
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


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    body: WebhookCreate, work: WorkDep, clock: ClockDep, caller: PartnerCaller, guard: GuardDep
) -> WebhookCreated:
    """Subscribe a URL to events; the answer carries the signing secret, shown only this once."""
    return WebhookCreated.created(await work(service.create_webhook, clock, caller, body, guard))


@router.get("", response_model=WebhookList)
async def list_webhooks(work: WorkDep, caller: PartnerCaller, page: PageDep) -> WebhookList:
    """The partner's webhooks, oldest first (without their secrets)."""
    items, total = await work(service.webhooks_of, caller, page.limit, page.offset)
    return WebhookList(
        items=[WebhookOut.of(w) for w in items], total=total, limit=page.limit, offset=page.offset
    )


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    webhook_id: PathId, work: WorkDep, clock: ClockDep, caller: PartnerCaller
) -> Response:
    """Remove a webhook and its delivery log."""
    await work(service.delete_webhook, clock, caller, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
async def list_deliveries(
    webhook_id: PathId, work: WorkDep, caller: PartnerCaller, page: PageDep
) -> DeliveryList:
    """The webhook's delivery log, newest first: each event's status, attempts and last answer."""
    items, total = await work(service.deliveries_of, caller, webhook_id, page.limit, page.offset)
    return DeliveryList(
        items=[DeliveryOut.of(d) for d in items], total=total, limit=page.limit, offset=page.offset
    )

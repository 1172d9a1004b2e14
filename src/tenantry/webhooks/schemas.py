"""Request and response bodies of the webhooks API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field, HttpUrl, StrictStr, field_validator

from tenantry.events.service import EVENT_TYPES
from tenantry.fields import OneLine, Strict

if TYPE_CHECKING:
    from tenantry.db.worker_models import EventDelivery, Webhook


class WebhookCreate(Strict):
    url: Annotated[HttpUrl, Field(description="http(s) address that receives a POST per event."), OneLine]
    events: Annotated[
        list[StrictStr] | None,
        Field(
            max_length=len(EVENT_TYPES),
            description=f"Event types to receive (all when omitted): {', '.join(EVENT_TYPES)}.",
        ),
    ] = None

    @field_validator("url")
    @classmethod
    def _short_enough(cls, url: HttpUrl) -> HttpUrl:
        if len(str(url)) > 2000:
            raise ValueError("at most 2000 characters")
        return url

    @field_validator("events")
    @classmethod
    def _known(cls, events: list[str] | None) -> list[str] | None:
        if events is None:
            return None
        unknown = sorted(set(events) - set(EVENT_TYPES))
        if unknown:
            raise ValueError(f"unknown event types {unknown}; known: {list(EVENT_TYPES)}")
        return sorted(set(events))


class WebhookOut(BaseModel):
    id: int
    url: str
    events: list[str]
    created_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        """A webhook without its secret."""
        return cls(id=webhook.id, url=webhook.url, events=webhook.events, created_at=webhook.created_at)


class WebhookCreated(WebhookOut):
    secret: str = Field(description="Signs every delivery. Shown only in this answer.")

    @classmethod
    def created(cls, webhook: Webhook) -> WebhookCreated:
        """A new webhook with its signing secret: shown in this answer only."""
        return cls(
            id=webhook.id,
            url=webhook.url,
            events=webhook.events,
            created_at=webhook.created_at,
            secret=webhook.secret,
        )


class WebhookList(BaseModel):
    items: list[WebhookOut]
    total: int
    limit: int
    offset: int


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: str = Field(description="pending (will be tried or retried), delivered, or failed (given up).")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: EventDelivery) -> DeliveryOut:
        return cls.model_validate(delivery, from_attributes=True)


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int

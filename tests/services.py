"""Helpers of the service-layer tests (`tests/*/test_service.py`), which call the domain services
directly with a session: no HTTP, no app. The fixtures (`session`, `partner_admin`, `clients`) are
in `tests/conftest.py`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients.schemas import ClientCreate, ClientUpdate
from tenantry.clients.service import create_client, update_client
from tenantry.clock import FakeClock
from tenantry.db.models import Client, Event, Partner, StatusChange

ROOMY = {"dashboards": 2, "users": 2, "published_links": 1, "api_calls_per_day": 100}
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


class Clients:
    """The client services on one session, clock and caller, with the arranging a test needs."""

    def __init__(self, session: Session, clock: FakeClock, admin: Principal) -> None:
        self.session, self.clock, self.admin = session, clock, admin

    def create(self, status: str = "setup", by: Principal | None = None, **body: Any) -> Client:
        return create_client(
            self.session,
            self.clock,
            by or self.admin,
            ClientCreate.model_validate({"name": "Acme", "status": status, **body}),
        )

    def update(self, client: Client, by: Principal | None = None, **body: Any) -> Client:
        return update_client(
            self.session, self.clock, by or self.admin, client.id, ClientUpdate.model_validate(body)
        )

    def in_status(self, status: str, **resources: int) -> Client:
        """A client in an effective status, built as a partner would: `trial_expired` lets the
        clock pass the trial's end; `disabled` goes through Active."""
        created = {"trial_expired": "trial", "disabled": "active"}.get(status, status)
        client = self.create(created, resources={**ROOMY, **resources})
        if status == "disabled":
            self.update(client, status="disabled")
        if status == "trial_expired":
            self.clock.advance(days=self.partner.trial_days + 1)
        return client

    @property
    def partner(self) -> Partner:
        partner = self.session.get(Partner, self.admin.partner_id)
        assert partner is not None
        return partner

    def history(self, client: Client) -> list[tuple[str | None, str]]:
        changes = self.session.scalars(
            select(StatusChange).where(StatusChange.client_id == client.id).order_by(StatusChange.id)
        )
        return [(change.from_status, change.to_status) for change in changes]

    def events(self, kind: str) -> int:
        return self.session.scalar(select(func.count()).select_from(Event).where(Event.type == kind)) or 0

    def allocated(self) -> dict[str, int]:
        """What the partner's pool has given to clients (the counted allocations)."""
        partner = self.partner
        return {
            "dashboards": partner.allocated_dashboards,
            "users": partner.allocated_users,
            "published_links": partner.allocated_published_links,
            "api_calls_per_day": partner.allocated_api_calls_per_day,
        }


def stored(client: Client) -> dict[str, Any]:
    """What a refused call must leave as it was."""
    return {
        "status": client.status,
        "allocation": {r: getattr(client, f"alloc_{r}") for r in ROOMY},
        "trial": (client.trial_started_at, client.trial_ends_at, client.trial_extended_at),
    }


def table(text: str) -> list[list[str]]:
    """The rows of a Markdown table, header and separator left out, cells stripped."""
    lines = [line.strip() for line in text.strip().splitlines()][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def as_role(admin: Principal, role: str, client: Client | None = None) -> Principal:
    """Another caller of the same partner: a partner user of `role`, or a client user of `client`
    (an id no row has: the caller is never the user it acts on)."""
    if client is None:
        return Principal("partner_user", admin.partner_id, -1, role)
    return Principal("client_user", admin.partner_id, -1, role, client_id=client.id)

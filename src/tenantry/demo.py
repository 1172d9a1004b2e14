"""Demo data: a partner with a client in every status, so a newcomer can explore at once.

Made at the clock's "now" (the server's clock, with its offset): the trial that has ended and the
client that was disabled are made with the clock set back by as many days as their story needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients import service as clients
from tenantry.clients.schemas import ClientCreate, ClientUpdate, Resources
from tenantry.clock import Clock
from tenantry.dashboards.schemas import DashboardCreate, KlipIn
from tenantry.dashboards.service import create_dashboard, set_shares
from tenantry.datasources.schemas import InlineSourceCreate
from tenantry.datasources.service import create_source
from tenantry.db.models import Partner
from tenantry.mail import LogMailer
from tenantry.outbound import Guard
from tenantry.owners import client_owner
from tenantry.partners.service import PartnerPlan, create_partner
from tenantry.users.schemas import ClientUserCreate
from tenantry.users.service import Inviter, add_client_user

DEMO_EMAIL = "admin@demo.tenantry.test"
DEMO_PASSWORD = "demo-password"
SALES: list[dict[str, str | int | float | bool | None]] = [
    {"month": "Jan", "region": "North", "sales": 120},
    {"month": "Feb", "region": "South", "sales": 80},
    {"month": "Mar", "region": "North", "sales": 150},
    {"month": "Apr", "region": "South", "sales": 170},
]


@dataclass(frozen=True)
class _Earlier:
    """The clock, set back by `by`."""

    clock: Clock
    by: timedelta

    def now(self) -> datetime:
        return self.clock.now() - self.by


def load_demo(db: Session, clock: Clock, base_url: str, *, if_empty: bool = False) -> str:
    """Load the demo partner and its clients; return what to tell the person who asked."""
    if if_empty and db.scalars(select(Partner.id).limit(1)).first() is not None:
        return "Demo data not loaded: the database already has partners."
    base_url = base_url.rstrip("/")
    created = create_partner(
        db,
        clock,
        name="Northwind Analytics (demo)",
        admin_email=DEMO_EMAIL,
        plan=PartnerPlan(dashboards=50, users=100, published_links=40, api_calls_per_day=10_000),
        admin_password=DEMO_PASSWORD,
    )
    admin = Principal("partner_user", created.partner_id, created.admin_user_id, "admin")
    some = Resources(dashboards=3, users=5, published_links=2, api_calls_per_day=0)
    inviter = Inviter(LogMailer(), base_url)

    def user(client_id: int, email: str, clock: Clock = clock) -> int:
        # Users join while the client is in Trial or Active, before any later status change.
        body = ClientUserCreate(
            email=email, name=email.split("@")[0].title(), role="admin", password=DEMO_PASSWORD
        )
        return add_client_user(db, clock, inviter, admin, client_id, body)[0].id

    def dashboard(client_id: int, user_id: int) -> None:
        """A sales dashboard over inline rows, shared with the client's user."""
        owner = client_owner(db, admin, client_id)
        rows = InlineSourceCreate(name="Monthly sales", kind="inline", rows=SALES)
        source = create_source(db, clock, admin, owner, rows, Guard())
        klips = [
            KlipIn.model_validate({"title": t, "kind": k, "datasource_id": source.id, "columns": c})
            for t, k, c in (
                ("Sales this month", "value", {"value": "sales"}),
                ("Sales by month", "bar", {"x": "month", "y": "sales"}),
                ("By region", "pie", {"label": "region", "value": "sales"}),
                ("All rows", "table", {}),
            )
        ]
        board = create_dashboard(db, clock, admin, owner, DashboardCreate(name="Sales overview", klips=klips))
        set_shares(db, clock, admin, board.id, [user_id])

    clients.create_client(db, clock, admin, ClientCreate(name="Acme Bakery", description="Being set up."))
    trial = clients.create_client(
        db,
        clock,
        admin,
        ClientCreate(name="Blue Fin Sushi", status="trial", resources=some, external_id="BF-7"),
    )
    dashboard(trial.id, user(trial.id, "trial@demo.tenantry.test"))
    extended = clients.create_client(
        db, clock, admin, ClientCreate(name="Cobalt Cycles", status="trial", resources=some)
    )
    clients.extend_trial(db, clock, admin, extended.id)
    active = clients.create_client(
        db,
        clock,
        admin,
        ClientCreate(name="Delta Dental", status="active", resources=some, external_id="DD-1"),
    )
    dashboard(active.id, user(active.id, "active@demo.tenantry.test"))
    # A trial that started 20 days ago has ended.
    days_ago = _Earlier(clock, timedelta(days=20))
    expired = clients.create_client(
        db, days_ago, admin, ClientCreate(name="Elm Street Books", status="trial", resources=some)
    )
    user(expired.id, "expired@demo.tenantry.test", days_ago)
    days_ago = _Earlier(clock, timedelta(days=40))
    disabled = clients.create_client(
        db, days_ago, admin, ClientCreate(name="Fjord Freight", status="active", resources=some)
    )
    user(disabled.id, "disabled@demo.tenantry.test", days_ago)
    clients.update_client(
        db,
        _Earlier(clock, timedelta(days=2)),
        admin,
        disabled.id,
        ClientUpdate(status="disabled", reason="Paused their contract."),
    )
    return (
        "Demo loaded: partner 'Northwind Analytics (demo)' with clients in Setup, Trial, extended Trial,\n"
        "Active, expired Trial and Disabled.\n"
        f"  Sign in at {base_url}/login as {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        "  (the partner console: Clients, a client's page, Plan)\n"
        "  Client users (same password): trial@, active@, expired@ and disabled@demo.tenantry.test\n"
        f"  API key (partner admin): {created.api_key}\n"
        f"  API docs: {base_url}/api/1/docs"
    )

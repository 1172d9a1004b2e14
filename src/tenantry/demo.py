"""Demo data: a partner with a client in every status, so a newcomer can explore at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients import service as clients
from tenantry.clients.schemas import ClientCreate, ClientUpdate, Resources
from tenantry.clock import FakeClock, SystemClock
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


def load_demo(db: Session, *, if_empty: bool = False) -> str:
    if if_empty and db.scalars(select(Partner.id).limit(1)).first() is not None:
        return "Demo data not loaded: the database already has partners."
    now = SystemClock().now()
    clock = FakeClock(now)
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
    inviter = Inviter(LogMailer(), "http://127.0.0.1:8000")

    def user(client_id: int, email: str) -> int:
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
    clock.set(now - timedelta(days=20))
    expired = clients.create_client(
        db, clock, admin, ClientCreate(name="Elm Street Books", status="trial", resources=some)
    )
    user(expired.id, "expired@demo.tenantry.test")
    clock.set(now - timedelta(days=40))
    disabled = clients.create_client(
        db, clock, admin, ClientCreate(name="Fjord Freight", status="active", resources=some)
    )
    user(disabled.id, "disabled@demo.tenantry.test")
    clock.set(now - timedelta(days=2))
    clients.update_client(
        db, clock, admin, disabled.id, ClientUpdate(status="disabled", reason="Paused their contract.")
    )
    return (
        "Demo loaded: partner 'Northwind Analytics (demo)' with clients in Setup, Trial, extended Trial,\n"
        "Active, expired Trial and Disabled.\n"
        f"  Sign in at http://127.0.0.1:8000/login as {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        "  (the partner console: Clients, a client's page, Plan)\n"
        "  Client users (same password): trial@, active@, expired@ and disabled@demo.tenantry.test\n"
        f"  API key (partner admin): {created.api_key}\n"
        "  API docs: http://127.0.0.1:8000/api/1/docs"
    )

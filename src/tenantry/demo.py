"""Demo data: a partner with a client in every status, so a newcomer can explore at once.

Made at the clock's "now" (the server's clock, with its offset): the trial that has ended and the
client that was disabled are made with the clock set back by as many days as their story needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.clients import service as clients
from tenantry.clients.schemas import ClientCreate, ClientUpdate, Resources
from tenantry.clock import Clock
from tenantry.dashboards.schemas import DashboardCreate, DashboardFilter, KlipIn
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


# The daily feed behind the demo's grid dashboard: half a year of days, so that "the last 90
# days" has a previous period to compare with.
DAYS = 200


def daily_sales(today: date) -> list[dict[str, str | int | float | bool | None]]:
    """One row a day and region up to `today`: orders, online and in-store revenue, cost and
    margin, varying by weekday and season in a fixed way (the demo is the same every time)."""
    rows: list[dict[str, str | int | float | bool | None]] = []
    for back in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        for n, region in enumerate(("North", "South")):
            wave = (day.toordinal() * 7 + n * 3) % 13
            online = 420 + 35 * wave + 60 * (day.weekday() < 5) + 2 * (DAYS - back)
            in_store = 310 + 25 * ((wave + 5) % 9) + (90 if day.weekday() >= 5 else 0) - 120 * n
            revenue = online + in_store
            cost = round(revenue * (0.55 + 0.01 * (wave % 5)), 2)
            rows.append(
                {
                    "day": day.isoformat(),
                    "region": region,
                    "orders": 20 + wave + 4 * n,
                    "online": online,
                    "in_store": in_store,
                    "revenue": revenue,
                    "cost": cost,
                    "margin_pct": round(100 * (revenue - cost) / revenue, 1),
                }
            )
    return rows


def _sum(column: str) -> dict[str, str]:
    return {"fn": "sum", "column": column, "as": column}


PERFORMANCE_KLIPS: list[dict[str, Any]] = [
    {
        "title": "Revenue, latest week",
        "kind": "value",
        "size": {"w": 4, "h": 2},
        "columns": {"value": "revenue"},
        "query": {"group_by": [{"column": "day", "bucket": "week"}], "aggregate": [_sum("revenue")]},
        "format": {"style": "currency", "decimals": 0},
        "compare": "previous_period",
        "sparkline": True,
    },
    {
        "title": "Online and in-store revenue by month",
        "kind": "bar",
        "size": {"w": 8, "h": 2},
        "columns": {"x": "day"},
        "series": [{"column": "online", "label": "Online"}, {"column": "in_store", "label": "In store"}],
        "stacked": True,
        "query": {
            "group_by": [{"column": "day", "bucket": "month"}],
            "aggregate": [_sum("online"), _sum("in_store")],
        },
        "format": {"style": "compact"},
    },
    {
        "title": "Regions",
        "kind": "table",
        "size": {"w": 8, "h": 2},
        "columns": {
            "fields": ["region", "revenue", "cost", "margin"],
            "formats": {
                "revenue": {"style": "currency", "decimals": 0},
                "cost": {"style": "currency", "decimals": 0},
                "margin": {"style": "percent", "decimals": 1},
            },
        },
        "query": {
            "group_by": ["region"],
            "aggregate": [
                _sum("revenue"),
                _sum("cost"),
                {"fn": "avg", "column": "margin_pct", "as": "margin"},
            ],
            "sort": [{"column": "revenue", "desc": True}],
        },
    },
    {
        "title": "About this dashboard",
        "kind": "text",
        "size": {"w": 4, "h": 2},
        "text": (
            "## Store performance\n\n"
            "Daily sales of both regions. Choose a **period** or a **region** above the klips; "
            "the weekly revenue compares with the same length of time just before.\n\n"
            "- Source: *Daily sales* (inline rows)\n- Built in the dashboard builder"
        ),
    },
]
PERFORMANCE_FILTERS = [
    {"id": "period", "kind": "date_range", "column": "day", "label": "Period", "default": "last_90_days"},
    {"id": "region", "kind": "select", "column": "region", "label": "Region"},
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

    def performance(client_id: int, user_id: int) -> None:
        """A grid dashboard over daily rows, with a period and a region filter."""
        owner = client_owner(db, admin, client_id)
        rows = InlineSourceCreate(name="Daily sales", kind="inline", rows=daily_sales(clock.now().date()))
        source = create_source(db, clock, admin, owner, rows, Guard())
        klips = [
            KlipIn.model_validate({**k, "datasource_id": None if k["kind"] == "text" else source.id})
            for k in PERFORMANCE_KLIPS
        ]
        filters = [DashboardFilter.model_validate(f) for f in PERFORMANCE_FILTERS]
        data = DashboardCreate(name="Store performance", klips=klips, filters=filters)
        board = create_dashboard(db, clock, admin, owner, data)
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
    active_user = user(active.id, "active@demo.tenantry.test")
    dashboard(active.id, active_user)
    performance(active.id, active_user)
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
        "  (active@ sees 'Store performance': a grid dashboard with period and region filters)\n"
        f"  API key (partner admin): {created.api_key}\n"
        f"  API docs: {base_url}/api/1/docs"
    )

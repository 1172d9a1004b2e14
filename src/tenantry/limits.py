"""How much one owner may hold (SPEC §12, "Limits"). Pure.

These caps are not the plan's pool (which counts what a partner pays for): they bound how much
one account can pile up, so no owner grows a table, a page or the worker's queue without end.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.errors import LimitReached

OWNER = "A client (or the partner's own account)"


@dataclass(frozen=True)
class Limit:
    name: str  # named in the refusal, e.g. `data_sources_per_owner`
    maximum: int
    things: str
    holder: str


DATA_SOURCES_PER_OWNER = Limit("data_sources_per_owner", 200, "data sources", OWNER)
DASHBOARDS_PER_OWNER = Limit("dashboards_per_owner", 200, "dashboards", OWNER)
KLIPS_PER_DASHBOARD = Limit("klips_per_dashboard", 50, "klips", "A dashboard")
WEBHOOKS_PER_PARTNER = Limit("webhooks_per_partner", 20, "webhooks", "A partner")
SCHEDULES_PER_DASHBOARD = Limit("schedules_per_dashboard", 20, "scheduled reports", "A dashboard")


def check_room(limit: Limit, held: int, adding: int = 1) -> None:
    """Refuse with `limit_reached` (409) when `held + adding` would pass the limit."""
    if held + adding <= limit.maximum:
        return
    situation = f"it has {held} already" if held >= limit.maximum else f"this would make {held + adding}"
    raise LimitReached(
        f"{limit.holder} holds at most {limit.maximum} {limit.things}; {situation}.",
        limit=limit.name,
        maximum=limit.maximum,
    )

"""What a browser session's calls to the JSON API draw on.

A client user's session is metered exactly like the user's API keys (SPEC §12): same daily
allocation, same burst limit, so signing in never buys calls a key would not get. A partner user's
session is not metered: the plan's remainder is what partner *keys* (integrations) draw on
(SPEC §8), while a session is a person in the console, which itself links to the JSON API (the
statement CSV) and must keep working when the plan's calls are used up or Redis is down.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tenantry.auth.principal import Principal
from tenantry.db.models import Client, Partner
from tenantry.meter.calendar import MeterCalendar
from tenantry.meter.service import Quota, client_quota

_CLIENT_METER = (
    select(Client.alloc_api_calls_per_day, Partner.timezone, Partner.previous_timezone, Partner.timezone_from)
    .join(Partner, Partner.id == Client.partner_id)
    .where(Client.id == bindparam("client_id"))
)


def session_quota(db: Session, caller: Principal) -> Quota | None:
    """The quota a signed-in caller's API calls draw on, or None when they are not metered."""
    if caller.is_partner or caller.client_id is None:
        return None
    row = db.execute(_CLIENT_METER, {"client_id": caller.client_id}).one()
    return client_quota(caller.client_id, row.alloc_api_calls_per_day, MeterCalendar.of(row))

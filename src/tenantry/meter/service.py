"""Charge one API call to a caller's daily quota; read today's counts; choose the counters once.

A day is the calendar day in the partner's timezone in force for the present month (SPEC §2, §8,
§12; see `meter.calendar`). A limit of 0 refuses every call; -1 (unlimited, partner keys only) is
not metered at all. Client users are metered whatever their credential, API key or browser
session, and every key and session of a client shares one burst limit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from tenantry.db.reads import Reads
from tenantry.db.session import Database
from tenantry.errors import DailyApiLimitReached
from tenantry.meter.burst import BurstLimiter
from tenantry.meter.calendar import MeterCalendar
from tenantry.meter.counters import DatabaseCounter, Hit, RedisCounter, UsageCounter
from tenantry.metrics import METER_REFUSALS
from tenantry.pool import UNLIMITED
from tenantry.settings import Settings

WINDOW_SECONDS = 86_400


@dataclass(frozen=True)
class Quota:
    """What one caller draws on: a counter scope, its daily limit, and the partner's meter days."""

    scope: str
    limit: int
    calendar: MeterCalendar
    burst_key: str | None = None  # client users only; partner keys have no burst limit

    @property
    def metered(self) -> bool:
        return self.limit != UNLIMITED


def client_scope(client_id: int) -> str:
    return f"client:{client_id}"


def partner_scope(partner_id: int) -> str:
    return f"partner:{partner_id}"


def client_quota(client_id: int, calls_per_day: int, calendar: MeterCalendar) -> Quota:
    """A client user's calls, by key or session, draw on the client's allocation; its keys and
    sessions share one burst limit (SPEC §12), so more keys never buy a faster burst."""
    return Quota(client_scope(client_id), calls_per_day, calendar, burst_key=client_scope(client_id))


def partner_quota(
    partner_id: int, plan_total: int, allocated_to_clients: int, calendar: MeterCalendar
) -> Quota:
    """Partner keys draw on what the plan has left after the counted client allocations (seed)."""
    limit = UNLIMITED if plan_total == UNLIMITED else max(0, plan_total - allocated_to_clients)
    return Quota(partner_scope(partner_id), limit, calendar)


def rate_limit_headers(limit: int, remaining: int, reset_in: int, reset_at: datetime) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"daily";q={limit};w={WINDOW_SECONDS}',
        "RateLimit": f'"daily";r={remaining};t={reset_in}',
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(reset_at.timestamp())),
    }


class Meter:
    def __init__(self, counter: UsageCounter, burst: BurstLimiter) -> None:
        self.counter = counter
        self.burst = burst
        # Both in one Redis: a metered call's burst window and its day's count are one script, one
        # round trip (`RedisCounter.hit_after_window_async`).
        self._counter_with_window = (
            counter if isinstance(counter, RedisCounter) and counter.counts_after(burst.redis_url) else None
        )

    async def headers_for(
        self, quota: Quota, now: datetime, headers_out: dict[str, str], reads: Reads
    ) -> None:
        """Put the rate-limit headers of a metered call that was not counted in `headers_out`."""
        if not quota.metered:
            return
        day, reset_at = quota.calendar.day(now)
        reset_in = max(1, math.ceil((reset_at - now).total_seconds()))
        count = (await self.counter.counts_async([quota.scope], day, reads)).get(quota.scope, 0)
        headers_out.update(rate_limit_headers(quota.limit, max(0, quota.limit - count), reset_in, reset_at))

    async def charge(self, quota: Quota, now: datetime, headers_out: dict[str, str]) -> None:
        """Count one call, or raise `rate_limited` / `daily_api_limit_reached`.

        The rate-limit headers are put in `headers_out` before `daily_api_limit_reached` is raised,
        so that refusal carries them too; a burst refusal (`rate_limited`) counts nothing, and
        `headers_for` reads the day's count for its headers. Called on the event loop: nothing
        here blocks it.
        """
        together = self._counter_with_window if quota.metered and quota.limit > 0 else None
        if quota.burst_key is not None and together is None:
            await self.burst.check_async(quota.burst_key)
        if not quota.metered:
            return
        day, reset_at = quota.calendar.day(now)
        reset_in = max(1, math.ceil((reset_at - now).total_seconds()))
        # Keep the key a day past its end so today's count can still be read near midnight.
        ttl = reset_in + WINDOW_SECONDS
        if quota.limit <= 0:
            hit = Hit(False, 0)
        elif quota.burst_key is not None and together is not None:
            counted = await together.hit_after_window_async(
                self.burst.window(quota.burst_key), quota.scope, day, quota.limit, ttl
            )
            if counted is None:
                self.burst.refuse()
            hit = counted
        else:
            hit = await self.counter.hit_async(quota.scope, day, quota.limit, ttl)
        remaining = max(0, quota.limit - hit.count) if hit.allowed else 0
        headers_out.update(rate_limit_headers(quota.limit, remaining, reset_in, reset_at))
        if not hit.allowed:
            error = DailyApiLimitReached(
                f"The daily limit of {quota.limit} API calls is used up; it resets at midnight "
                f"({quota.calendar.timezone_at(now)}).",
                limit=quota.limit,
                resets_at=reset_at.isoformat(),
                headers={"Retry-After": str(reset_in)},
            )
            METER_REFUSALS.labels(reason="daily_limit").inc()
            raise error

    async def aclose(self) -> None:
        """Close the running event loop's connections (at the end of the app's lifespan)."""
        await self.counter.aclose()
        await self.burst.aclose()

    def close(self) -> None:
        """Write the counts still held in memory to the database (at shutdown)."""
        self.counter.close()

    def calls_today(
        self, scopes: Sequence[str], calendar: MeterCalendar, now: datetime, reader: Connection | None = None
    ) -> dict[str, int]:
        """Today's counts for many scopes of one partner, in one round trip (see `UsageCounter`)."""
        day, _ = calendar.day(now)
        return self.counter.counts(scopes, day, reader)

    async def client_calls_today_async(
        self, client_ids: Sequence[int], calendar: MeterCalendar, now: datetime, reads: Reads
    ) -> dict[int, int]:
        day, _ = calendar.day(now)
        counts = await self.counter.counts_async([client_scope(i) for i in client_ids], day, reads)
        return {i: counts.get(client_scope(i), 0) for i in client_ids}

    def calls_today_beside(
        self, latest_day: str | None, latest_calls: int | None, calendar: MeterCalendar, now: datetime
    ) -> int | None:
        """Today's count of a scope, from the latest day the database counter keeps for it and that
        day's count, read beside something else (`clients.repository.CLIENT_WITH_KEY`). None when
        they cannot tell: with Redis, which keeps the count itself, or when the latest day is after
        today (a clock set back); then the count is read as usual."""
        if not isinstance(self.counter, DatabaseCounter):
            return None
        day, _ = calendar.day(now)
        if latest_day is None or latest_day < day:
            return 0  # nothing counted today (ISO days sort as they fall)
        return int(latest_calls or 0) if latest_day == day else None

    def client_calls_today(
        self,
        client_ids: Sequence[int],
        calendar: MeterCalendar,
        now: datetime,
        reader: Connection | None = None,
    ) -> dict[int, int]:
        counts = self.calls_today([client_scope(i) for i in client_ids], calendar, now, reader)
        return {i: counts.get(client_scope(i), 0) for i in client_ids}


def meter_from_settings(settings: Settings, database: Database) -> Meter:
    """Redis when TENANTRY_REDIS_URL is set (shared by every process), the database otherwise."""
    if settings.redis_url:
        return Meter(
            RedisCounter.from_url(settings.redis_url, database, settings.meter_flush_seconds),
            BurstLimiter(settings.redis_url, settings.api_burst_per_second),
        )
    return Meter(DatabaseCounter(database), BurstLimiter("memory://", settings.api_burst_per_second))

"""Charge one API call to a caller's daily quota; read today's counts; choose the counters once.

A day is the calendar day in the partner's timezone (SPEC §2, §8). A limit of 0 refuses every call;
-1 (unlimited, partner keys only) is not metered at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from tenantry.db.session import Database
from tenantry.errors import DailyApiLimitReached
from tenantry.meter.burst import BurstLimiter
from tenantry.meter.counters import DatabaseCounter, Hit, RedisCounter, UsageCounter
from tenantry.metrics import METER_REFUSALS
from tenantry.pool import UNLIMITED
from tenantry.settings import Settings

WINDOW_SECONDS = 86_400


@dataclass(frozen=True)
class Quota:
    """What one caller draws on: a counter scope, its daily limit, and the partner's timezone."""

    scope: str
    limit: int
    timezone: str
    burst_key: str | None = None  # client keys only; partner keys have no burst limit

    @property
    def metered(self) -> bool:
        return self.limit != UNLIMITED


def client_scope(client_id: int) -> str:
    return f"client:{client_id}"


def partner_scope(partner_id: int) -> str:
    return f"partner:{partner_id}"


def local_day(now: datetime, timezone: str) -> tuple[str, datetime]:
    """The calendar day of `now` in the timezone, and the instant (UTC) the next day starts."""
    zone = ZoneInfo(timezone)
    day = now.astimezone(zone).date()
    next_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return day.isoformat(), next_day.astimezone(UTC)


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

    def charge(self, quota: Quota, now: datetime, headers_out: dict[str, str]) -> None:
        """Count one call, or raise `rate_limited` / `daily_api_limit_reached`.

        The rate-limit headers are put in `headers_out` before anything is raised, so a refusal
        carries them too.
        """
        if quota.burst_key is not None:
            self.burst.check(quota.burst_key)
        if not quota.metered:
            return
        day, reset_at = local_day(now, quota.timezone)
        reset_in = max(1, math.ceil((reset_at - now).total_seconds()))
        if quota.limit <= 0:
            hit = Hit(False, 0)
        else:
            # Keep the key a day past its end so today's count can still be read near midnight.
            hit = self.counter.hit(quota.scope, day, quota.limit, reset_in + WINDOW_SECONDS)
        remaining = max(0, quota.limit - hit.count) if hit.allowed else 0
        headers_out.update(rate_limit_headers(quota.limit, remaining, reset_in, reset_at))
        if not hit.allowed:
            error = DailyApiLimitReached(
                f"The daily limit of {quota.limit} API calls is used up; it resets at midnight "
                f"({quota.timezone}).",
                limit=quota.limit,
                resets_at=reset_at.isoformat(),
                headers={"Retry-After": str(reset_in)},
            )
            METER_REFUSALS.labels(reason="daily_limit").inc()
            raise error

    def calls_today(
        self, scopes: Sequence[str], timezone: str, now: datetime, reader: Connection | None = None
    ) -> dict[str, int]:
        """Today's counts for many scopes of one partner, in one round trip (see `UsageCounter`)."""
        day, _ = local_day(now, timezone)
        return self.counter.counts(scopes, day, reader)

    def client_calls_today(
        self, client_ids: Sequence[int], timezone: str, now: datetime, reader: Connection | None = None
    ) -> dict[int, int]:
        counts = self.calls_today([client_scope(i) for i in client_ids], timezone, now, reader)
        return {i: counts.get(client_scope(i), 0) for i in client_ids}


def meter_from_settings(settings: Settings, database: Database) -> Meter:
    """Redis when TENANTRY_REDIS_URL is set (shared by every process), the database otherwise."""
    if settings.redis_url:
        return Meter(
            RedisCounter.from_url(settings.redis_url),
            BurstLimiter(settings.redis_url, settings.api_burst_per_second),
        )
    return Meter(DatabaseCounter(database), BurstLimiter("memory://", settings.api_burst_per_second))

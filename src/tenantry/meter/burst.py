"""The burst limit of client users: N requests per second per client (SPEC §8: 5; §12: all keys
and sessions of a client share it), a moving window.

In memory per process without Redis; in Redis (shared by every process) when it is configured.
"""

from __future__ import annotations

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from tenantry.errors import RateLimited
from tenantry.meter.counters import meter_unavailable
from tenantry.metrics import METER_REFUSALS


class BurstLimiter:
    def __init__(self, storage_uri: str, per_second: int) -> None:
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._item = RateLimitItemPerSecond(per_second)
        self.per_second = per_second

    def check(self, key: str) -> None:
        try:
            allowed = self._limiter.hit(self._item, "tenantry-burst", key)
        except (RedisError, OSError) as exc:
            raise meter_unavailable(exc) from exc
        if not allowed:
            METER_REFUSALS.labels(reason="burst").inc()
            raise RateLimited(
                f"More than {self.per_second} requests in one second for this client; slow down.",
                limit_per_second=self.per_second,
                headers={"Retry-After": "1"},
            )

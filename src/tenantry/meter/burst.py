"""The burst limit of client users: N requests per second per client (SPEC §8: 5; §12: all keys
and sessions of a client share it), a moving window.

In memory per process without Redis; in Redis (shared by every process) when it is configured.
"""

from __future__ import annotations

import asyncio
from typing import Any

from limits import RateLimitItemPerSecond
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindowRateLimiter
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from tenantry.errors import RateLimited
from tenantry.meter.counters import meter_unavailable
from tenantry.metrics import METER_REFUSALS


class BurstLimiter:
    def __init__(self, storage_uri: str, per_second: int) -> None:
        self._uri = storage_uri
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._item = RateLimitItemPerSecond(per_second)
        self.per_second = per_second
        # With Redis, the event loop's own limiter (redis.asyncio), one per loop.
        self._async: dict[int, Any] = {}

    def check(self, key: str) -> None:
        try:
            allowed = self._limiter.hit(self._item, "tenantry-burst", key)
        except (RedisError, OSError) as exc:
            raise meter_unavailable(exc) from exc
        self._settle(allowed)

    async def check_async(self, key: str) -> None:
        """`check` from the event loop: in memory it is a few microseconds; Redis is asked without
        blocking the loop."""
        if self._uri.startswith("memory://"):
            self.check(key)
            return
        loop = id(asyncio.get_running_loop())
        limiter = self._async.get(loop)
        if limiter is None:
            storage = storage_from_string("async+" + self._uri, implementation="redispy")
            limiter = self._async[loop] = AsyncMovingWindowRateLimiter(storage)
        try:
            allowed = await limiter.hit(self._item, "tenantry-burst", key)
        except (RedisError, OSError) as exc:
            raise meter_unavailable(exc) from exc
        self._settle(allowed)

    async def aclose(self) -> None:
        """Close the running loop's connection to Redis (at the end of the app's lifespan)."""
        limiter = self._async.pop(id(asyncio.get_running_loop()), None)
        storage = getattr(limiter, "storage", None)
        client = getattr(getattr(storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    def _settle(self, allowed: bool) -> None:
        if not allowed:
            METER_REFUSALS.labels(reason="burst").inc()
            raise RateLimited(
                f"More than {self.per_second} requests in one second for this client; slow down.",
                limit_per_second=self.per_second,
                headers={"Retry-After": "1"},
            )

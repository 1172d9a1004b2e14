"""The burst limit of client users: N requests per second per client (SPEC §8: 5; §12: all keys
and sessions of a client share it), a moving window.

In memory per process without Redis; in Redis (shared by every process) when it is configured.
The event loop asks Redis through `meter.resp` with the `limits` library's own moving-window script
and key, so both ways of asking (`check`, `check_async`) share one window per client.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import NoReturn

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from tenantry.errors import RateLimited
from tenantry.loops import PerLoop
from tenantry.meter.counters import Window, meter_unavailable
from tenantry.meter.resp import RespClient
from tenantry.metrics import METER_REFUSALS

# What `limits` runs for a moving window in Redis, and the prefix of its keys.
_ACQUIRE_SCRIPT = (
    resources.files("limits.resources.redis.lua_scripts") / "acquire_moving_window.lua"
).read_text()
_KEY_PREFIX = "LIMITS:"
_NAMESPACE = "tenantry-burst"


class BurstLimiter:
    def __init__(self, storage_uri: str, per_second: int) -> None:
        self._uri = storage_uri
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self._item = RateLimitItemPerSecond(per_second)
        self.per_second = per_second
        # With Redis, the event loop's own connection, one per loop.
        self._async: PerLoop[RespClient] = PerLoop()

    def check(self, key: str) -> None:
        try:
            allowed = self._limiter.hit(self._item, _NAMESPACE, key)
        except (RedisError, OSError) as exc:
            raise meter_unavailable(exc) from exc
        self.settle(allowed)

    async def check_async(self, key: str) -> None:
        """`check` from the event loop: in memory it is a few microseconds; Redis is asked without
        blocking the loop."""
        if self._uri.startswith("memory://"):
            self.check(key)
            return
        client = self._async.get()
        if client is None:
            client = self._async.get_or_make(lambda: RespClient(self._uri, timeout=2))
        window = self.window(key)
        try:
            allowed = await client.run_script(window.script, [window.key], window.args) == 1
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        self.settle(allowed)

    def window(self, key: str) -> Window:
        """The Redis check of one call of `key` (`limits`' own script, key and arguments)."""
        return Window(
            _ACQUIRE_SCRIPT,
            _KEY_PREFIX + self._item.key_for(_NAMESPACE, key),
            (time.time(), self._item.amount, self._item.get_expiry(), 1),
        )

    @property
    def redis_url(self) -> str | None:
        return None if self._uri.startswith("memory://") else self._uri

    async def aclose(self) -> None:
        """Close the running loop's connection to Redis (at the end of the app's lifespan)."""
        client = self._async.pop()
        if client is not None:
            await client.aclose()

    def settle(self, allowed: bool) -> None:
        if not allowed:
            self.refuse()

    def refuse(self) -> NoReturn:
        """The window refused the call: `rate_limited`."""
        METER_REFUSALS.labels(reason="burst").inc()
        raise RateLimited(
            f"More than {self.per_second} requests in one second for this client; slow down.",
            limit_per_second=self.per_second,
            headers={"Retry-After": "1"},
        )

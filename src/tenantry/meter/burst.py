"""The burst limit of client users: N requests per second per client (SPEC §8: 5; §12: all keys
and sessions of a client share it), a moving window.

In memory per process without Redis (`MemoryWindows`); in Redis (shared by every process) when it
is configured: the event loop asks Redis through `meter.resp` with the `limits` library's own
moving-window script and key.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from importlib import resources
from typing import NoReturn

from limits import RateLimitItemPerSecond
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
# Burst keys whose Redis key is kept (one a client: past this many, they are made again).
_KEYS_KEPT = 4096


class MemoryWindows:
    """Moving windows kept in this process: a call is allowed when fewer than `amount` calls of its
    key were allowed in the `seconds` before it (what `limits` does in Redis). About a microsecond
    a call, against 8 to 10 for `limits`' in-memory storage, which also starts a timer thread to
    expire its keys.

    Keys idle for a whole window are dropped every `SWEEP_EVERY` calls, so memory stays bounded by
    the keys active within one window. Thread-safe."""

    SWEEP_EVERY = 4096

    def __init__(
        self, amount: int, seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.amount, self.seconds, self._clock = amount, seconds, clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._until_sweep = self.SWEEP_EVERY

    def hit(self, key: str) -> bool:
        now = self._clock()
        horizon = now - self.seconds
        with self._lock:
            self._until_sweep -= 1
            if self._until_sweep <= 0:
                self._sweep(horizon)
            calls = self._calls.get(key)
            if calls is None:
                calls = self._calls[key] = deque()
            while calls and calls[0] <= horizon:
                calls.popleft()
            if len(calls) >= self.amount:
                return False
            calls.append(now)
            return True

    def __len__(self) -> int:
        return len(self._calls)

    def _sweep(self, horizon: float) -> None:
        self._until_sweep = self.SWEEP_EVERY
        for key in [key for key, calls in self._calls.items() if not calls or calls[-1] <= horizon]:
            del self._calls[key]


class BurstLimiter:
    def __init__(self, storage_uri: str, per_second: int) -> None:
        self._uri = storage_uri
        self._memory = MemoryWindows(per_second) if storage_uri.startswith("memory://") else None
        self._item = RateLimitItemPerSecond(per_second)
        self._expiry = self._item.get_expiry()
        # Each burst key's Redis key, made once (`limits` joins five parts for it on every call).
        self._keys: dict[str, str] = {}
        self.per_second = per_second
        # With Redis, the event loop's own connection, one per loop.
        self._async: PerLoop[RespClient] = PerLoop()

    async def check_async(self, key: str) -> None:
        """Count one call of `key`, or raise `rate_limited`: in memory, or in Redis without
        blocking the loop."""
        if self._memory is not None:
            self.settle(self._memory.hit(key))
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
        redis_key = self._keys.get(key)
        if redis_key is None:
            if len(self._keys) >= _KEYS_KEPT:
                self._keys.clear()
            redis_key = self._keys[key] = _KEY_PREFIX + self._item.key_for(_NAMESPACE, key)
        return Window(_ACQUIRE_SCRIPT, redis_key, (time.time(), self._item.amount, self._expiry, 1))

    @property
    def redis_url(self) -> str | None:
        return None if self._memory is not None else self._uri

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

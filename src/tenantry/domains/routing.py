"""Which partner a request's `Host` belongs to, decided once per request by a pure ASGI middleware.

Every process keeps the whole table of verified domains in memory (host name -> partner id) and
reads it again from the database when it is older than `TENANTRY_DOMAIN_CACHE_SECONDS` (5 s): one
small query per process every few seconds, whatever the traffic, so a domain verified or removed
anywhere (another process, the `tenantry domain` command) takes effect within that time. A change
made through this process's own API or console takes effect at once (`HostTable.invalidate`).

Whatever the `Host` header says, a lookup is a dict lookup: a name that is no verified domain is
simply absent (the negative answer costs nothing and stores nothing), so a client sending random
`Host` headers neither grows the table nor causes a single query. The table holds the verified
domains and nothing else.

The read runs on the event loop (`db.reads`), one at a time: while it runs, other requests are
answered from the table as it was (only the very first requests of a process wait for it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from tenantry.domains.names import request_host

log = structlog.get_logger("tenantry.domains")

Loader = Callable[[], Awaitable[dict[str, int]]]
# Answered the same on every host: no lookup for them.
HOSTLESS_PATHS = ("/healthz", "/metrics", "/static/")
# After a failed read, the table as it was serves this long before the next try.
RETRY_SECONDS = 1.0


class HostTable:
    """The verified domains of every partner, read again when older than `ttl` seconds."""

    def __init__(self, load: Loader, ttl: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load, self.ttl, self._monotonic = load, ttl, monotonic
        self._hosts: dict[str, int] | None = None
        self._fresh_until = 0.0
        self._changes = 0  # invalidations so far: a read begun before one is not fresh after it
        self._lock = asyncio.Lock()
        self.loads = 0  # how many times the table was read (for tests and metrics)

    def __len__(self) -> int:
        return len(self._hosts or {})

    def invalidate(self) -> None:
        """Read the table again before the next lookup (a domain changed in this process)."""
        self._changes += 1
        self._fresh_until = 0.0

    async def partner_of(self, host: str) -> int | None:
        """The partner whose verified domain `host` is (as `names.request_host` spells it), or None."""
        hosts = self.fresh()
        if hosts is None:
            hosts = await self._refresh()
        return hosts.get(host) if host else None

    def fresh(self) -> dict[str, int] | None:
        """The table, or None when it must be read (again) first."""
        hosts = self._hosts
        return None if hosts is None or self._monotonic() >= self._fresh_until else hosts

    async def _refresh(self) -> dict[str, int]:
        if self._lock.locked() and self._hosts is not None:
            return self._hosts  # another request is reading it: the table as it was will do
        async with self._lock:
            if self._hosts is None or self._monotonic() >= self._fresh_until:
                started, changes = self._monotonic(), self._changes
                try:
                    self._hosts = await self._load()
                except Exception as exc:
                    if self._hosts is None:
                        raise  # nothing to answer from: the request fails (503 when the database is down)
                    # Fail open to what was known a moment ago, rather than serving every
                    # partner's domain as the default address while the database is away.
                    log.warning("domains not read; the table as it was serves", error=type(exc).__name__)
                    self._fresh_until = started + RETRY_SECONDS
                    return self._hosts
                self.loads += 1
                if changes == self._changes:
                    self._fresh_until = started + self.ttl
            return self._hosts


class HostMiddleware:
    """Put the partner whose verified domain the `Host` header names in
    `scope["state"]["host_partner_id"]` (None on the default address and for any other host),
    where `tenantry.domains.host_partner_id` reads it."""

    def __init__(self, app: ASGIApp, *, hosts: HostTable) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(HOSTLESS_PATHS):
            await place_host_partner(scope, self.hosts)
        await self.app(scope, receive, send)


async def place_host_partner(scope: Scope, hosts: HostTable) -> None:
    """`scope["state"]["host_partner_id"]`: the partner whose verified domain the `Host` header
    names, or None."""
    partner_id = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = request_host(value)
            # A dict lookup when the table is fresh (nearly always): no coroutine for it.
            table = hosts.fresh()
            if table is not None:
                partner_id = table.get(host) if host else None
            else:
                partner_id = await hosts.partner_of(host)
            break
    scope.setdefault("state", {})["host_partner_id"] = partner_id

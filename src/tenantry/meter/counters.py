"""Daily counters: one atomic check-and-increment per call, in Redis or in the database.

Both implementations are exact under concurrency and across processes: Redis runs the check and the
INCR in one Lua script; the database does it in one `INSERT ... ON CONFLICT DO UPDATE ... WHERE`
statement, in its own short transaction (so a counter row is never locked for a whole request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import structlog
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from tenantry.db.models import ApiCallCounter
from tenantry.db.prepared import PreparedSelect
from tenantry.db.session import Database
from tenantry.errors import MeterUnavailable
from tenantry.metrics import METER_REFUSALS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Hit:
    allowed: bool
    count: int  # calls counted for the day, this one included when allowed


class UsageCounter(Protocol):
    def hit(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        """Count one call unless `limit` calls were already counted for (scope, day)."""
        ...

    def counts(self, scopes: Sequence[str], day: str, reader: Connection | None = None) -> dict[str, int]:
        """The day's counts of many scopes, in one round trip (on `reader`, when the counts are in
        the database and the caller already holds a reader connection)."""
        ...


# Check and increment in one step: two processes can never both take the last call.
_HIT_SCRIPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then
  return {0, count}
end
count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return {1, count}
"""

UNAVAILABLE = "The API-call meter cannot be reached, so no call is accepted. Try again shortly."


def meter_unavailable(exc: Exception) -> MeterUnavailable:
    """Fail closed: a call that cannot be counted is refused (and logged), never let through."""
    log.error("api-call meter unavailable", error=str(exc))
    METER_REFUSALS.labels(reason="unavailable").inc()
    return MeterUnavailable(UNAVAILABLE, headers={"Retry-After": "5"})


class RedisCounter:
    def __init__(self, client: Redis, prefix: str = "tenantry:calls:") -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_HIT_SCRIPT)

    @classmethod
    def from_url(cls, url: str) -> RedisCounter:
        return cls(Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2))

    def _key(self, scope: str, day: str) -> str:
        return f"{self._prefix}{scope}:{day}"

    def hit(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        try:
            allowed, count = self._script(keys=[self._key(scope, day)], args=[limit, ttl_seconds])
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        return Hit(bool(allowed), int(count))

    def counts(self, scopes: Sequence[str], day: str, reader: Connection | None = None) -> dict[str, int]:
        if not scopes:
            return {}
        try:
            values: list[Any] = self._client.mget([self._key(s, day) for s in scopes])
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        return {s: int(v) for s, v in zip(scopes, values, strict=True) if v is not None}


_COUNTS = select(ApiCallCounter.scope, ApiCallCounter.count).where(
    ApiCallCounter.day == bindparam("day"), ApiCallCounter.scope.in_(bindparam("scopes", expanding=True))
)
# One scope (a client's own view, on every GET of it): an equality lookup, prepared.
_COUNT_ONE = PreparedSelect(
    select(ApiCallCounter.count).where(
        ApiCallCounter.day == bindparam("day"), ApiCallCounter.scope == bindparam("scope")
    )
)


class DatabaseCounter:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._insert = sqlite.insert if database.is_sqlite else postgresql.insert

    def hit(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        table = cast(Table, ApiCallCounter.__table__)
        statement = (
            self._insert(table)
            .values(scope=scope, day=day, count=1)
            .on_conflict_do_update(
                index_elements=[table.c.scope, table.c.day],
                set_={"count": table.c.count + 1},
                where=table.c.count < limit,
            )
            .returning(table.c.count)
        )
        with self._database.session(write=True) as session:
            count = session.execute(statement).scalar_one_or_none()
            if count == 1:
                # The scope's first call of the day: its earlier days are of no more use.
                session.execute(
                    delete(ApiCallCounter).where(ApiCallCounter.scope == scope, ApiCallCounter.day < day)
                )
            session.commit()
        # No row back: the WHERE refused the update, the day's calls are used up.
        return Hit(False, limit) if count is None else Hit(True, int(count))

    def counts(self, scopes: Sequence[str], day: str, reader: Connection | None = None) -> dict[str, int]:
        if not scopes:
            return {}
        if reader is None:
            with self._database.reader() as connection:
                return self.counts(scopes, day, connection)
        # A statement built once: this runs for every client shown.
        if len(scopes) == 1:
            found = _COUNT_ONE.run(reader, day=day, scope=scopes[0])
            return {scopes[0]: int(found[0].count)} if found else {}
        rows = reader.execute(_COUNTS, {"day": day, "scopes": list(scopes)}).all()
        return {scope: int(count) for scope, count in rows}

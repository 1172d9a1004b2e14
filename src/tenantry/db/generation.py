"""The generation of what the API key lookups read, in Redis: a new random value after every
transaction that wrote to one of their tables, so each web process's cache of those reads
(`auth.keycache`) knows it is stale before it answers from it.

Writes are seen where every write passes, the driver's cursor (`before_cursor_execute`), not in
the code that makes them: a statement that inserts into, updates, deletes from (or alters) one of
the watched tables marks its connection, and when a marked connection goes back to the pool
(after its transaction committed or rolled back) the generation changes, before the request that
wrote is answered. The ORM, Core statements and raw SQL of the app, the worker and the command
line all go through here. A write the app does not make (someone's SQL in psql) is seen by the
caches only when their entries run out (`keycache.ENTRY_SECONDS`).

Should Redis not take the new value, the write stands (it committed) and a warning is logged;
the caches then hold what they read for those few seconds at most.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from typing import Any

import structlog
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, Select, Table, event
from sqlalchemy.sql.util import find_tables

log = structlog.get_logger("tenantry.db.generation")

GENERATION_KEY = "tenantry:keys:generation"
_DIRTY = "tenantry_wrote_watched"
# A statement that changes a table: the table it names first. Quoted or not, with SQLite's
# `INSERT OR REPLACE` and PostgreSQL's `ONLY`.
_WRITE = re.compile(
    r"\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE(?:\s+OR\s+\w+)?(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?"
    r"|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?|ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?)"
    r'\s+"?(\w+)"?',
    re.IGNORECASE,
)


# The tables the key lookups and their companions read (`auth.repository.key_lookup_tables`, which
# a test holds to this list). The database's call counters among them, though with Redis the
# counts are Redis's: what the cache keeps is exactly what a read would give.
WATCHED_TABLES = frozenset(
    {"api_keys", "partners", "partner_users", "client_users", "clients", "api_call_counters"}
)


def watch_key_writes(engine: Engine, redis_url: str | None) -> None:
    """With PostgreSQL and Redis (where the web processes cache the key lookups), change the
    generation after every transaction of `engine` that wrote to a table they read."""
    if redis_url and engine.dialect.name == "postgresql":
        Generation(redis_url).watch(engine, WATCHED_TABLES)


def tables_read(statements: Iterable[Select[*tuple[Any, ...]]]) -> frozenset[str]:
    """The names of the tables these statements read (joins and subqueries included)."""
    names = set()
    for statement in statements:
        for found in find_tables(statement, include_joins=True, include_aliases=True, include_crud=True):
            table = getattr(found, "element", found)
            if isinstance(table, Table):
                names.add(table.name)
    return frozenset(names)


def written_table(statement: str) -> str | None:
    """The table a statement changes (lower case), or None for a read."""
    found = _WRITE.match(statement)
    return found.group(1).lower() if found else None


class Generation:
    """The generation's key in one Redis database, changed from threads (the writes' own)."""

    def __init__(self, redis_url: str) -> None:
        self._client = Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)

    def bump(self) -> None:
        try:
            self._client.set(GENERATION_KEY, secrets.token_hex(16))
        except RedisError as exc:
            log.warning("key lookups' generation not changed", error_type=type(exc).__name__)

    def watch(self, engine: Engine, tables: frozenset[str]) -> None:
        """Change the generation after each of `engine`'s transactions that wrote to `tables`
        (once per engine however often it is asked)."""
        if getattr(engine, "_tenantry_generation", None) is not None:
            return
        engine._tenantry_generation = self  # type: ignore[attr-defined]

        @event.listens_for(engine, "before_cursor_execute")
        def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            table = written_table(statement)
            if table is not None and table in tables:
                conn.info[_DIRTY] = True

        def returned(dbapi_connection: Any, record: Any) -> None:
            if record is not None and record.info.pop(_DIRTY, False):
                self.bump()

        event.listen(engine.pool, "checkin", returned)
        # A connection dropped in mid-transaction is not checked in: its writes may have committed.
        event.listen(engine.pool, "invalidate", lambda dbapi, record, exc: returned(dbapi, record))
        event.listen(engine.pool, "soft_invalidate", lambda dbapi, record, exc: returned(dbapi, record))

"""The hot reads of the request path, run without leaving the event loop.

Every API request reads its key; the hottest endpoints read a client, today's count, a published
link. These are prepared SELECTs (`db.prepared`) of a row or two, and a trip to a worker thread
and back costs more than any of them. So they run on the event loop:

- **SQLite**: synchronously, on one connection of the event loop's own that never opens a
  transaction (`PRAGMA query_only`). A read of a local file in WAL mode never waits for a writer
  and takes tens of microseconds; the loop runs one request at a time, so one connection serves
  them all, with no pool to check out from.
- **PostgreSQL**: on psycopg's async connections, from a small pool of autocommit connections of
  their own (`open()` at start-up, `close()` at shutdown), so the loop never waits on a socket.

`async with database_reads.connection() as reads: rows = await reads.run(QUERY, name=value)`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import psycopg
from sqlalchemy.engine import Dialect

from tenantry.db.prepared import PreparedSelect
from tenantry.db.session import Database


class Reads(Protocol):
    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]: ...


class _SqliteReads:
    __slots__ = ("_connection", "_dialect")

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection, self._dialect = connection, dialect

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        return query.run_dbapi(self._connection, self._dialect, **params)


class _AsyncReads:
    __slots__ = ("_connection", "_dialect", "_pool")

    def __init__(self, pool: Any, connection: Any, dialect: Dialect) -> None:
        self._pool, self._connection, self._dialect = pool, connection, dialect

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        try:
            return await query.run_async(self._connection, self._dialect, **params)
        except psycopg.OperationalError:
            if not self._connection.broken:
                raise
        # The connection died with the server (a restart): the pool drops it; a read is safe to
        # run again, once, on a fresh one. Connections are not checked before each use (a round
        # trip each), so this is how the first request after a restart still succeeds. The other
        # idle connections most likely died with it: the pool checks them all first, so the read
        # runs again on one that works.
        broken, self._connection = self._connection, None
        await self._pool.putconn(broken)
        await self._pool.check()
        self._connection = await self._pool.getconn()
        return await query.run_async(self._connection, self._dialect, **params)

    async def release(self) -> None:
        if self._connection is not None:
            await self._pool.putconn(self._connection)


class DatabaseReads:
    """Where the hot reads run: the event loop's side of the database."""

    def __init__(self, database: Database, *, max_size: int, timeout: float) -> None:
        self.database = database
        self.dialect = database.engine.dialect
        self._max_size, self._timeout = max_size, timeout
        # Per event loop: an app is served by one loop, but tests may drive it from several.
        self._sqlite: dict[int, _SqliteReads] = {}
        self._pools: dict[int, Any] = {}

    async def open(self) -> None:
        """Open the pool of async connections (PostgreSQL) for the running loop."""
        if not self.database.is_sqlite:
            await self._pool()

    async def close(self) -> None:
        pool = self._pools.pop(id(asyncio.get_running_loop()), None)
        if pool is not None:
            await pool.close()
        reads = self._sqlite.pop(id(asyncio.get_running_loop()), None)
        if reads is not None:
            reads._connection.close()

    async def _pool(self) -> Any:
        loop = id(asyncio.get_running_loop())
        pool = self._pools.get(loop)
        if pool is None:
            from psycopg_pool import AsyncConnectionPool

            url = self.database.engine.url.set(drivername="postgresql")
            pool = self._pools[loop] = AsyncConnectionPool(
                url.render_as_string(hide_password=False),
                min_size=1,
                max_size=self._max_size,
                timeout=self._timeout,
                kwargs={"autocommit": True, "connect_timeout": 3},
                # No check before each use (a round trip each): see `_AsyncReads.run`.
                open=False,
                name="tenantry-reads",
            )
            await pool.open(wait=False)
        return pool

    def _sqlite_reads(self) -> _SqliteReads:
        loop = id(asyncio.get_running_loop())
        reads = self._sqlite.get(loop)
        if reads is None:
            # A connection made by the engine (so it is set up like every other one), then taken out
            # of the pool for good: the loop's own.
            fairy = self.database.engine.raw_connection()
            connection = fairy.driver_connection
            fairy.detach()
            assert isinstance(connection, sqlite3.Connection)
            connection.execute("PRAGMA query_only=1")
            reads = self._sqlite[loop] = _SqliteReads(connection, self.dialect)
        return reads

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Reads]:
        if self.database.is_sqlite:
            yield self._sqlite_reads()
            return
        pool = await self._pool()
        reads = _AsyncReads(pool, await pool.getconn(), self.dialect)
        try:
            yield reads
        finally:
            await reads.release()

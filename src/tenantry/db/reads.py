"""The hot reads of the request path, run without leaving the event loop.

Every API request reads its key; the hottest endpoints read a client, today's count, a published
link. These are prepared SELECTs (`db.prepared`) of a row or two, and a trip to a worker thread
and back costs more than any of them. So they run on the event loop:

- **SQLite**: synchronously, on one connection of the event loop's own that never opens a
  transaction (`PRAGMA query_only`). A read of a local file in WAL mode never waits for a writer
  and takes tens of microseconds; the loop runs one request at a time, so one connection serves
  them all, with no pool to check out from.
- **PostgreSQL**: on asyncpg's connections, from a small pool of their own (`db.readpool`; `open()`
  at start-up, `close()` at shutdown), so the loop never waits on a socket. asyncpg, not psycopg's async
  connections: a pooled read of a row costs about 85 µs of CPU against 140 µs (uvloop, this
  project's 2-core test machine), and every API request makes one or two. Each statement runs on
  its own (no transaction); asyncpg prepares it once per connection.

`async with database_reads.connection() as reads: rows = await reads.run(QUERY, name=value)`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect

from tenantry.db.prepared import PreparedSelect
from tenantry.db.readpool import ReadPool
from tenantry.db.session import Database
from tenantry.loops import PerLoop

# As for the engine's connections (`db.session`): an unreachable server is known within seconds.
CONNECT_TIMEOUT_SECONDS = 3


class Reads(Protocol):
    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]: ...


class _SqliteReads:
    __slots__ = ("_connection", "_dialect")

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection, self._dialect = connection, dialect

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        return query.run_dbapi(self._connection, self._dialect, **params)


class ReadsUnavailable(Exception):
    """The database could not be reached for a read, or no connection was free in time: the
    request is answered 503 (`api.middleware.DATABASE_FAULTS`)."""


# What asyncpg raises when the server cannot be reached, refuses more connections or the
# connection is lost (with OSError: a refused or reset socket).
ASYNCPG_FAULTS: tuple[type[BaseException], ...] = (
    ReadsUnavailable,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    # The connection's protocol is in a state it cannot go on from (it broke in mid-operation).
    asyncpg.exceptions.InternalClientError,
)
_LOST: tuple[type[BaseException], ...] = (OSError, *ASYNCPG_FAULTS)
# Every read here looks rows up by key, so one plan fits every value of its parameters: the generic
# plan, made once per connection, instead of PostgreSQL planning the first five runs of each
# statement on every connection and choosing between plans at every run after them (its own CPU per
# key lookup with the client read: 68 µs against 78 to 87, 8 connections in a loop, on this
# project's 2-core test machine).
READ_SERVER_SETTINGS = {"application_name": "tenantry-reads", "plan_cache_mode": "force_generic_plan"}
# The SQLAlchemy dialect the statements are compiled for: asyncpg's ($1 parameters, with casts).
ASYNCPG_DIALECT = PGDialect_asyncpg()


async def _json_codecs(connection: Any) -> None:
    """JSON in and out as SQLAlchemy's asyncpg dialect sets it up: its JSON binds are already text."""
    await connection.set_type_codec(
        "json",
        encoder=str.encode,
        decoder=lambda raw: json.loads(raw.decode()),
        schema="pg_catalog",
        format="binary",
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=lambda text: b"\x01" + text.encode(),
        decoder=lambda raw: json.loads(raw[1:].decode()),
        schema="pg_catalog",
        format="binary",
    )


class _AsyncReads:
    __slots__ = ("_connection", "_owner", "_pool")

    def __init__(self, owner: DatabaseReads, pool: ReadPool | None, connection: Any) -> None:
        self._owner, self._pool, self._connection = owner, pool, connection

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        try:
            return await query.run_async(self._connection, ASYNCPG_DIALECT, **params)
        except _LOST as exc:
            if self._pool is None:  # a connection of its own (see `DatabaseReads.connection`)
                raise ReadsUnavailable("the database closed the connection") from exc
        # The connection died with the server (a restart), or went while this ran: a read is safe
        # to run again, once, on a fresh one. Connections are not checked before each use (a round
        # trip each), so this is how the first request after a restart still succeeds. The other
        # idle connections most likely died with it: the pool closes them all.
        broken, self._connection = self._connection, None
        self._pool.release(broken, reusable=False)
        self._pool.expire()
        self._connection = await self._owner.acquire(self._pool)
        try:
            return await query.run_async(self._connection, ASYNCPG_DIALECT, **params)
        except _LOST as exc:
            raise ReadsUnavailable("the database closed the connection") from exc

    async def release(self, failed: BaseException | None) -> None:
        """Give the connection back. After an error other than the server's answer to a statement
        (a cancelled request, a lost socket), it may be mid-statement: it is closed instead."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._pool is None:
            await connection.close()
        else:
            self._pool.release(
                connection, reusable=failed is None or isinstance(failed, asyncpg.PostgresError)
            )


class DatabaseReads:
    """Where the hot reads run: the event loop's side of the database."""

    def __init__(self, database: Database, *, max_size: int, timeout: float) -> None:
        self.database = database
        self.dialect = database.engine.dialect if database.is_sqlite else ASYNCPG_DIALECT
        self._max_size, self._timeout = max_size, timeout
        # Per event loop: an app is served by one loop, but tests may drive it from several.
        self._sqlite: PerLoop[_SqliteReads] = PerLoop()
        self._pools: PerLoop[ReadPool] = PerLoop()

    async def open(self) -> None:
        """Open the pool of async connections (PostgreSQL) for the running loop, and one
        connection when the database answers (a database that is down is not an error here: the
        requests that need it are answered 503 until it is back)."""
        if not self.database.is_sqlite:
            pool = self._pool()
            with suppress(ReadsUnavailable):
                pool.release(await self.acquire(pool))

    async def close(self) -> None:
        pool = self._pools.pop()
        if pool is not None:
            await pool.close()
        reads = self._sqlite.pop()
        if reads is not None:
            reads._connection.close()

    def _pool(self) -> ReadPool:
        return self._pools.get_or_make(
            lambda: ReadPool(self._connect, max_size=self._max_size, timeout=self._timeout)
        )

    async def acquire(self, pool: ReadPool) -> Any:
        """A connection of the pool, or `ReadsUnavailable` when the database cannot be reached or
        none is free within the pool timeout."""
        try:
            return await pool.acquire()
        except TimeoutError as exc:
            raise ReadsUnavailable("no database connection was free in time") from exc
        except _LOST as exc:
            raise ReadsUnavailable("the database cannot be reached") from exc

    def _sqlite_reads(self) -> _SqliteReads:
        reads = self._sqlite.get()
        if reads is None:
            reads = self._sqlite.get_or_make(self._sqlite_connection)
        return reads

    def _sqlite_connection(self) -> _SqliteReads:
        # A connection made by the engine (so it is set up like every other one), then taken out of
        # the pool for good: the loop's own.
        fairy = self.database.engine.raw_connection()
        connection = fairy.driver_connection
        fairy.detach()
        assert isinstance(connection, sqlite3.Connection)
        connection.execute("PRAGMA query_only=1")
        return _SqliteReads(connection, self.dialect)

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        """One read on a connection of its own, given back at once: for a read that may not be
        needed at all (a connection is taken only when it is)."""
        async with self.connection() as reads:
            return await reads.run(query, **params)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Reads]:
        if self.database.is_sqlite:
            yield self._sqlite_reads()
            return
        pool = self._pools.get()
        if pool is None:
            # A loop the pool was not opened on (`open()`, in the app's lifespan): a connection of
            # its own, closed afterwards, so nothing is left open when that loop ends.
            reads = _AsyncReads(self, None, await self._connect_once())
        else:
            reads = _AsyncReads(self, pool, await self.acquire(pool))
        try:
            yield reads
        except BaseException as exc:
            await reads.release(exc)
            raise
        await reads.release(None)

    async def _connect_once(self) -> Any:
        try:
            return await self._connect()
        except _LOST as exc:
            raise ReadsUnavailable("the database cannot be reached") from exc
        except TimeoutError as exc:
            raise ReadsUnavailable("the database did not answer in time") from exc

    async def _connect(self) -> Any:
        connection = await asyncpg.connect(self._dsn(), **self._connect_options())
        try:
            await _json_codecs(connection)
        except BaseException:
            connection.terminate()
            raise
        return connection

    def _dsn(self) -> str:
        return self.database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @staticmethod
    def _connect_options() -> dict[str, Any]:
        return {"timeout": CONNECT_TIMEOUT_SECONDS, "server_settings": READ_SERVER_SETTINGS}

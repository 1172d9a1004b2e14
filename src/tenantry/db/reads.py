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

**Reads together** (`database_reads.together().run(QUERY, name=value)`, PostgreSQL): the API key
lookups (and the published pages' reads) of the requests that reach them in the same step of the
event loop (under load, those that arrived together) run as one statement per statement on one
connection (`PreparedSelect.run_many_async`), at the start of the next step. A round trip, and an
execution on the server, cost about the same for one lookup as for a dozen: PostgreSQL's CPU per
lookup, 16 callers, was 66-70 µs alone and 14 µs in batches of 16 on this project's 2-core test
machine, where the database shares the cores with the app. A batch the server refuses for one
lookup's value (a `DataError`: a NUL character, a number out of range) runs again one lookup at a
time, so each request gets its own answer or error. On SQLite (a local read that never waits) it
is the loop's connection, as `connection()` gives it.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol, TypeVar

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import Dialect

from tenantry.db.prepared import PreparedSelect
from tenantry.db.readpool import ReadPool
from tenantry.db.session import Database
from tenantry.loops import PerLoop

T = TypeVar("T")

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
        return await self._retried(lambda: query.run_async(self._connection, ASYNCPG_DIALECT, **params))

    async def run_many(self, query: PreparedSelect, asks: list[Mapping[str, Any]]) -> list[list[Any]]:
        return await self._retried(lambda: query.run_many_async(self._connection, ASYNCPG_DIALECT, asks))

    async def _retried(self, read: Callable[[], Awaitable[T]]) -> T:
        try:
            return await read()
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
            return await read()
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


class _Together:
    """The lookups of one event loop, gathered by statement in each step and run together."""

    def __init__(self, owner: DatabaseReads) -> None:
        self._owner = owner
        self._asked: dict[PreparedSelect, list[tuple[dict[str, Any], asyncio.Future[list[Any]]]]] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        asked = self._asked.get(query)
        if asked is None:
            asked = self._asked[query] = []
            loop.call_soon(self._start, query)
        asked.append((params, waiter))
        return await waiter

    def _start(self, query: PreparedSelect) -> None:
        task = asyncio.get_running_loop().create_task(self._read(query, self._asked.pop(query)))
        self._running.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(self._running.discard)

    async def _read(
        self, query: PreparedSelect, asked: list[tuple[dict[str, Any], asyncio.Future[list[Any]]]]
    ) -> None:
        waiting = [(params, waiter) for params, waiter in asked if not waiter.done()]  # not cancelled
        if not waiting:
            return
        try:
            async with self._owner.connection() as reads:
                assert isinstance(reads, _AsyncReads)
                if len(waiting) > 1:
                    try:
                        found = await reads.run_many(query, [params for params, _ in waiting])
                    except asyncpg.DataError:
                        found = None  # one lookup's value refused them all: each alone, below
                    if found is not None:
                        for (_, waiter), rows in zip(waiting, found, strict=True):
                            _settle(waiter, rows)
                        return
                for params, waiter in waiting:
                    try:
                        rows = await reads.run(query, **params)
                    except asyncpg.PostgresError as exc:
                        _fail(waiter, exc)
                    else:
                        _settle(waiter, rows)
        except BaseException as exc:  # no connection, a lost one, or the loop shutting down
            for _, waiter in waiting:
                _fail(waiter, exc)
            if not isinstance(exc, Exception):
                raise


def _settle(waiter: asyncio.Future[list[Any]], rows: list[Any]) -> None:
    if not waiter.done():
        waiter.set_result(rows)


def _fail(waiter: asyncio.Future[list[Any]], exc: BaseException) -> None:
    if not waiter.done():
        cancelled = ReadsUnavailable("the read was cancelled")
        waiter.set_exception(exc if isinstance(exc, Exception) else cancelled)


class DatabaseReads:
    """Where the hot reads run: the event loop's side of the database."""

    def __init__(self, database: Database, *, max_size: int, timeout: float) -> None:
        self.database = database
        self.dialect = database.engine.dialect if database.is_sqlite else ASYNCPG_DIALECT
        self._max_size, self._timeout = max_size, timeout
        # Per event loop: an app is served by one loop, but tests may drive it from several.
        self._sqlite: PerLoop[_SqliteReads] = PerLoop()
        self._pools: PerLoop[ReadPool] = PerLoop()
        self._together: PerLoop[_Together] = PerLoop()

    async def open(self) -> None:
        """Open the pool of async connections (PostgreSQL) for the running loop, and one
        connection when the database answers (a database that is down is not an error here: the
        requests that need it are answered 503 until it is back)."""
        if not self.database.is_sqlite:
            pool = self._pool()
            with suppress(ReadsUnavailable):
                pool.release(await self.acquire(pool))

    async def close(self) -> None:
        self._together.pop()
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

    def together(self) -> Reads:
        """Where a read by key joins those of the same statement begun in the same step of the loop
        (see the module's description); it holds no connection of its own."""
        if self.database.is_sqlite:
            return self._sqlite_reads()
        return self._together.get_or_make(lambda: _Together(self))

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

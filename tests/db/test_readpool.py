"""The event loop's pool of read connections (`db.readpool`), against a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text

from tenantry.db.prepared import PreparedSelect
from tenantry.db.readpool import ReadPool
from tenantry.db.reads import DatabaseReads, ReadsUnavailable
from tests.conftest import PG_URL

needs_pg = pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")

APPLICATION = "tenantry-readpool-test"
SLEEP = PreparedSelect(select(func.pg_sleep(10)))
ONE = PreparedSelect(select(func.abs(-1)))


def connector(database: Any) -> Callable[[], Awaitable[Any]]:
    dsn = database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def connect() -> Any:
        return await asyncpg.connect(dsn, server_settings={"application_name": APPLICATION})

    return connect


def server_connections(database: Any, application: str = APPLICATION) -> int:
    with database.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = :name"
                ),
                {"name": application},
            ).scalar_one()
        )


@needs_pg
def test_a_caller_who_finds_every_connection_busy_gets_the_first_one_given_back(database):
    async def scenario() -> tuple[bool, int, int]:
        pool = ReadPool(connector(database), max_size=2, timeout=5)
        first, second = await pool.acquire(), await pool.acquire()
        third = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.05)
        waited = not third.done()
        pool.release(second)
        handed = await third
        size = pool.size
        for connection in (first, handed):
            pool.release(connection)
        await pool.close()
        return waited and handed is second, size, pool.size

    assert asyncio.run(scenario()) == (True, 2, 0)
    assert server_connections(database) == 0


@needs_pg
def test_a_caller_who_waits_longer_than_the_timeout_is_refused_and_takes_nothing(database):
    async def scenario() -> tuple[type[BaseException], int, int]:
        pool = ReadPool(connector(database), max_size=1, timeout=0.2)
        busy = await pool.acquire()
        with pytest.raises(TimeoutError) as refused:
            await pool.acquire()
        pool.release(busy)
        again = await pool.acquire()  # the connection is still there, and free
        size = pool.size
        pool.release(again)
        idle = pool.idle
        await pool.close()
        return refused.type, size, idle

    assert asyncio.run(scenario()) == (TimeoutError, 1, 1)


@needs_pg
def test_the_reads_answer_unavailable_when_no_connection_frees_in_time(database):
    database_reads = DatabaseReads(database, max_size=1, timeout=0.2)

    async def scenario() -> str:
        await database_reads.open()
        try:
            async with database_reads.connection():
                with pytest.raises(ReadsUnavailable) as refused:
                    async with database_reads.connection():
                        pass
            async with database_reads.connection() as reads:  # and the next read goes through
                assert len(await reads.run(ONE)) == 1
            return str(refused.value)
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == "no database connection was free in time"


@needs_pg
def test_a_read_cancelled_mid_statement_closes_its_connection_and_the_next_read_is_answered(database):
    database_reads = DatabaseReads(database, max_size=1, timeout=5)

    async def sleep() -> None:
        async with database_reads.connection() as reads:
            await reads.run(SLEEP)

    async def scenario() -> tuple[int, list[Any]]:
        await database_reads.open()
        try:
            sleeping = asyncio.ensure_future(sleep())
            await asyncio.sleep(0.3)  # the statement is running on the server
            sleeping.cancel()
            with pytest.raises(asyncio.CancelledError):
                await sleeping
            size = database_reads._pool().size  # the connection was closed, not put back
            async with database_reads.connection() as reads:
                rows = await reads.run(ONE)
            return size, [tuple(row) for row in rows]
        finally:
            await database_reads.close()

    assert asyncio.run(asyncio.wait_for(scenario(), 8)) == (0, [(1,)])
    # asyncpg asked the server to cancel the statement: its backend ends well before the 10 s.
    deadline = time.monotonic() + 3
    while server_connections(database, "tenantry-reads") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server_connections(database, "tenantry-reads") == 0


@needs_pg
def test_a_statement_the_server_refuses_leaves_its_connection_in_the_pool(database):
    bad = PreparedSelect(select(func.sqrt(-1)))  # "cannot take square root of a negative number"

    async def scenario() -> tuple[int, int]:
        database_reads = DatabaseReads(database, max_size=2, timeout=5)
        await database_reads.open()
        try:
            with pytest.raises(asyncpg.PostgresError):
                async with database_reads.connection() as reads:
                    await reads.run(bad)
            pool = database_reads._pool()
            return pool.size, pool.idle
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == (1, 1)


@needs_pg
def test_an_idle_connection_older_than_the_limit_is_closed_at_the_next_check_out(database):
    async def scenario() -> tuple[bool, int]:
        pool = ReadPool(connector(database), max_size=2, timeout=5, max_idle_seconds=0.1)
        old = await pool.acquire()
        pool.release(old)
        await asyncio.sleep(0.2)
        fresh = await pool.acquire()
        replaced = fresh is not old
        pool.release(fresh)
        await asyncio.sleep(0.1)  # the old one says goodbye in the background
        closed = old.is_closed()
        size = pool.size
        await pool.close()
        return replaced and closed, size

    assert asyncio.run(scenario()) == (True, 1)
    assert server_connections(database) == 0


@needs_pg
def test_closing_the_pool_closes_idle_connections_and_each_busy_one_as_it_comes_back(database):
    async def scenario() -> tuple[int, int, int]:
        pool = ReadPool(connector(database), max_size=3, timeout=5)
        idle, busy = await pool.acquire(), await pool.acquire()
        pool.release(idle)
        await pool.close()
        during = server_connections(database)
        pool.release(busy)
        await asyncio.sleep(0.1)
        with pytest.raises(asyncpg.InterfaceError):
            await pool.acquire()
        return during, server_connections(database), pool.size

    assert asyncio.run(scenario()) == (1, 0, 0)


def test_a_connection_that_cannot_be_made_leaves_room_for_the_next_attempt():
    attempts: list[int] = []

    async def refused() -> Any:
        attempts.append(1)
        raise ConnectionRefusedError("nothing listens there")

    async def scenario() -> int:
        pool = ReadPool(refused, max_size=1, timeout=1)
        for _ in range(3):
            with pytest.raises(ConnectionRefusedError):
                await pool.acquire()
        return pool.size

    assert asyncio.run(scenario()) == 0
    assert len(attempts) == 3

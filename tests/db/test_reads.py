"""The reads on the event loop (`db.reads`) outlive a database that drops its connections."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import column, select, table, text

from tenantry.auth import repository as auth_repo
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import DatabaseReads
from tests.conftest import PG_URL
from tests.factories import drop_every_connection


@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
@pytest.mark.parametrize(
    "noticed",
    [
        pytest.param(True, id="the loss noticed before the next read"),
        pytest.param(False, id="the loss found by the next read itself"),
    ],
)
def test_after_the_server_drops_every_connection_the_next_reads_succeed(database, partner, noticed):
    prefix = partner.api_key.split("_")[1]
    database_reads = DatabaseReads(database, max_size=4, timeout=5)

    async def read() -> int:
        async with database_reads.connection() as reads:
            return len(await reads.run(auth_repo._KEY_LOOKUP, prefix=prefix))

    async def scenario() -> list[int]:
        await database_reads.open()  # as the app's lifespan does: the pool
        try:
            warm = await asyncio.gather(*(read() for _ in range(4)))  # four connections in the pool
            drop_every_connection(database)  # the loop does not run meanwhile
            if noticed:
                await asyncio.sleep(0.2)  # the loop reads the connections' end
            return [*warm, *[await read() for _ in range(3)]]
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == [1] * 7


@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_a_read_on_a_loop_the_pool_was_not_opened_on_leaves_no_connection_open(database, partner):
    prefix = partner.api_key.split("_")[1]
    database_reads = DatabaseReads(database, max_size=4, timeout=5)

    def connections() -> int:
        with database.engine.connect() as conn:
            count = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'tenantry-reads'"
                )
            ).scalar_one()
        return int(count)

    async def read() -> tuple[int, int]:
        async with database_reads.connection() as reads:
            found = len(await reads.run(auth_repo._KEY_LOOKUP, prefix=prefix))
            return found, connections()

    assert [asyncio.run(read()) for _ in range(3)] == [(1, 1)] * 3  # one while it reads
    assert connections() == 0  # and none afterwards, though the loops are gone


@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_the_key_lookup_is_planned_once_per_connection_not_at_every_run(database, partner):
    prefix = partner.api_key.split("_")[1]
    database_reads = DatabaseReads(database, max_size=1, timeout=5)  # one connection: the same one
    plans = PreparedSelect(
        select(column("generic_plans"), column("custom_plans"))
        .select_from(table("pg_prepared_statements"))
        .where(column("statement").contains("api_keys.prefix"))
    )

    async def scenario() -> list[tuple[int, int]]:
        await database_reads.open()
        try:
            for _ in range(7):  # PostgreSQL would plan each of the first five runs on its own
                async with database_reads.connection() as reads:
                    assert len(await reads.run(auth_repo._KEY_LOOKUP, prefix=prefix)) == 1
            async with database_reads.connection() as reads:
                return [(row.generic_plans, row.custom_plans) for row in await reads.run(plans)]
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == [(7, 0)]

"""The reads on the event loop (`db.reads`): they outlive a database that drops its connections, and
those begun together are read together, each getting the rows of its own parameters."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import column, select, table, text, update

from tenantry.auth import repository as auth_repo
from tenantry.clients import repository as clients_repo
from tenantry.db.dashboard_models import Klip
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import ASYNCPG_DIALECT, DatabaseReads
from tenantry.links import repository as links_repo
from tenantry.links.service import hash_link_token
from tests.conftest import PG_URL
from tests.factories import client_with_user, drop_every_connection, prefix_of


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


def _lookups(database, http, partner, clock, make_partner):  # type: ignore[no-untyped-def]
    """Key lookups of different callers, with and without a route's read (of the partner's client,
    of a client another partner's key names, of no client), and one of a key that does not exist;
    and what SQLAlchemy's own execution returns for each."""
    client_id, _, client_headers = client_with_user(http, partner, clock, "trial", "reader@client.test")
    other = make_partner(dashboards=1, users=1, published_links=1, api_calls_per_day=10)
    with_client = clients_repo.CLIENT_WITH_KEY.lookup
    asks = [
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(partner.headers)}),
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(client_headers)}),
        (auth_repo._KEY_LOOKUP, {"prefix": "0" * 12}),  # no such key
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(other.headers)}),
        (with_client, {"prefix": prefix_of(partner.headers), "client_id": client_id, "scope": "c"}),
        # Another partner's key naming this partner's client.
        (with_client, {"prefix": prefix_of(other.headers), "client_id": client_id, "scope": "c"}),
        (with_client, {"prefix": prefix_of(partner.headers), "client_id": client_id + 99, "scope": "c"}),
    ]
    with database.reader() as conn:
        expected = [[tuple(row) for row in conn.execute(query.statement, params)] for query, params in asks]
    assert [len(rows) for rows in expected] == [1, 1, 0, 1, 1, 1, 1]
    return asks, expected


def test_lookups_begun_together_each_get_the_rows_of_their_own_parameters(
    database, http, partner, clock, make_partner
):
    asks, expected = _lookups(database, http, partner, clock, make_partner)
    database_reads = DatabaseReads(database, max_size=2, timeout=5)

    async def scenario() -> list[list[tuple[object, ...]]]:
        await database_reads.open()
        try:
            together = database_reads.together()
            found = await asyncio.gather(*(together.run(query, **params) for query, params in asks))
            return [[tuple(row) for row in rows] for rows in found]
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == expected
    target = auth_repo._KEY_COLUMNS  # the first column of the client the route reads
    assert [expected[4][0][target], expected[5][0][target]] == [asks[4][1]["client_id"], None]


@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_on_postgresql_lookups_begun_in_the_same_step_are_one_statement(
    database, http, partner, clock, make_partner
):
    asks, expected = _lookups(database, http, partner, clock, make_partner)
    database_reads = DatabaseReads(database, max_size=1, timeout=5)  # one connection: the same one
    executions = PreparedSelect(
        select(column("statement"), column("generic_plans"), column("custom_plans")).select_from(
            table("pg_prepared_statements")
        )
    )

    async def scenario() -> tuple[list[list[tuple[object, ...]]], list[tuple[bool, int]]]:
        await database_reads.open()
        try:
            together = database_reads.together()
            found = await asyncio.gather(*(together.run(query, **params) for query, params in asks))
            async with database_reads.connection() as reads:
                ran = [
                    ("unnest(" in row.statement, row.generic_plans + row.custom_plans)
                    for row in await reads.run(executions)
                    if "api_keys.prefix" in row.statement
                ]
            return [[tuple(row) for row in rows] for rows in found], sorted(ran)
        finally:
            await database_reads.close()

    found, ran = asyncio.run(scenario())
    assert found == expected
    # Two statements (the key alone, the key with the client), each run once for all its lookups.
    assert ran == [(True, 1), (True, 1)]


@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_a_batch_the_server_refuses_is_read_again_one_lookup_at_a_time(database, partner):
    database_reads = DatabaseReads(database, max_size=1, timeout=5)
    good = {"prefix": prefix_of(partner.headers)}
    refused = {"prefix": "bad\x00prefix"}  # PostgreSQL refuses a NUL character in text

    async def scenario() -> list[object]:
        await database_reads.open()
        try:
            together = database_reads.together()
            return await asyncio.gather(
                together.run(auth_repo._KEY_LOOKUP, **good),
                together.run(auth_repo._KEY_LOOKUP, **refused),
                together.run(auth_repo._KEY_LOOKUP, **good),
                return_exceptions=True,
            )
        finally:
            await database_reads.close()

    first, second, third = asyncio.run(scenario())
    assert isinstance(second, asyncpg.PostgresError)
    assert isinstance(first, list) and isinstance(third, list)
    assert [len(first), len(third)] == [1, 1]
    assert first[0].id == third[0].id


@pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
def test_a_lookup_whose_caller_left_does_not_hold_up_the_others(database, partner):
    database_reads = DatabaseReads(database, max_size=1, timeout=5)
    good = {"prefix": prefix_of(partner.headers)}

    async def scenario() -> tuple[bool, list[int]]:
        await database_reads.open()
        try:
            together = database_reads.together()
            reads = [asyncio.ensure_future(together.run(auth_repo._KEY_LOOKUP, **good)) for _ in range(3)]
            await asyncio.sleep(0)  # all three asked in this step
            reads[1].cancel()  # a request that ended (its client went away) before the read ran
            done = await asyncio.gather(*reads, return_exceptions=True)
            return isinstance(done[1], asyncio.CancelledError), [len(rows) for rows in (done[0], done[2])]
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == (True, [1, 1])


def test_a_batched_read_takes_exactly_the_statements_own_parameters():
    with_client = clients_repo.CLIENT_WITH_KEY.lookup
    whole = {"prefix": "p", "client_id": 1, "scope": "s"}
    with pytest.raises(ValueError, match="exactly"):
        asyncio.run(with_client.run_many_async(None, ASYNCPG_DIALECT, [whole, {"prefix": "p"}]))
    with pytest.raises(ValueError, match="exactly"):  # a value the statement gives itself (its LIMIT)
        asyncio.run(with_client.run_many_async(None, ASYNCPG_DIALECT, [{**whole, "param_1": 5}]))


def test_reads_of_published_pages_begun_together_keep_each_dashboards_klips_in_order(
    database, http, partner, clock
):
    client_id, _, _ = client_with_user(
        http, partner, clock, "active", "pages@client.test", dashboards=2, published_links=2
    )
    source = http.post(
        f"/api/1/clients/{client_id}/datasources",
        json={"name": "Sales", "kind": "inline", "rows": [{"month": "Jan", "sales": 3}]},
        headers=partner.headers,
    ).json()
    tokens = []
    for board in ("North", "South"):
        klips = [
            {
                "title": f"{board} {n}",
                "kind": "value",
                "datasource_id": source["id"],
                "columns": {"value": "sales"},
            }
            for n in range(4)
        ]
        made = http.post(
            f"/api/1/clients/{client_id}/dashboards",
            json={"name": board, "klips": klips},
            headers=partner.headers,
        ).json()
        link = http.post(
            f"/api/1/dashboards/{made['id']}/published-links", json={"name": board}, headers=partner.headers
        ).json()
        tokens.append(link["url"].rsplit("/", 1)[1])
        if board == "South":  # its klips' order is no longer the order they were made in
            with database.session(write=True) as session:
                session.execute(
                    update(Klip).where(Klip.dashboard_id == made["id"]).values(position=100 - Klip.position)
                )
                session.commit()
    asks = [{"token_hash": hash_link_token(token)} for token in (*tokens, "no-such-link" * 3, tokens[0])]
    query = links_repo._PUBLIC_WITH_KLIPS
    with database.reader() as conn:
        expected = [[tuple(row) for row in conn.execute(query.statement, params)] for params in asks]
    titles = [[row[-_TITLE] for row in rows] for rows in expected]
    assert titles == [[f"North {n}" for n in range(4)], [f"South {n}" for n in (3, 2, 1, 0)], [], titles[0]]
    database_reads = DatabaseReads(database, max_size=1, timeout=5)

    async def scenario() -> list[list[tuple[object, ...]]]:
        await database_reads.open()
        try:
            together = database_reads.together()
            found = await asyncio.gather(*(together.run(query, **params) for params in asks))
            return [[tuple(row) for row in rows] for rows in found]
        finally:
            await database_reads.close()

    assert asyncio.run(scenario()) == expected


_TITLE = links_repo._KLIP_COLUMNS - 2  # a klip's title, counted from the end of a page's row

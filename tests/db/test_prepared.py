"""Prepared reads return exactly what SQLAlchemy's own execution of the statement returns."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select

from tenantry.auth import repository as auth_repo
from tenantry.auth.principal import Principal
from tenantry.clients import repository as clients_repo
from tenantry.db.base import UTCDateTime
from tenantry.db.models import Client, Dashboard
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import DatabaseReads
from tenantry.links import repository as links_repo
from tenantry.links.service import hash_link_token
from tenantry.meter import counters
from tenantry.meter.counters import DatabaseCounter
from tenantry.meter.service import client_scope
from tenantry.users import repository as users_repo
from tests.factories import client_with_user, prefix_of, set_status


def test_every_prepared_read_of_a_request_returns_what_sqlalchemy_returns(database, http, partner, clock):
    client_id, _, client_headers = client_with_user(http, partner, clock, "trial", "reader@client.test")
    DatabaseCounter(database).hit(client_scope(client_id), "2026-03-10", 100, 60)
    own = {"partner_id": partner.id, "client_id": client_id}
    cases = [
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(partner.headers)}),  # a partner user's key
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(client_headers)}),  # a client user's key
        # The key with a route's own read (`KeyCompanion`).
        (
            clients_repo.CLIENT_WITH_KEY.lookup,
            {"prefix": prefix_of(partner.headers), "client_id": client_id, "scope": client_scope(client_id)},
        ),
        (users_repo.ME_WITH_KEY.lookup, {"prefix": prefix_of(client_headers)}),
        (clients_repo._CLIENT_ROW_OF_PARTNER, own),
        (clients_repo._CLIENT_ROW_OF_CLIENT_USER, {**own, "own_client_id": client_id}),
        (counters._COUNT_ONE, {"day": "2026-03-10", "scope": client_scope(client_id)}),
    ]
    with database.reader() as conn:
        for prepared, params in cases:
            expected = [tuple(row) for row in conn.execute(prepared.statement, params)]
            assert len(expected) == 1
            assert prepared.run(conn, **params) == expected
        admin = Principal("partner_user", partner.id, partner.admin_user_id, "admin")
        row = clients_repo.read_client(conn, admin, client_id)
        # A reader holds no transaction open between statements.
        driver = conn.connection.driver_connection
        assert (not driver.in_transaction) if database.is_sqlite else driver.autocommit
    assert row.trial_ends_at == datetime(2026, 3, 24, 12, tzinfo=UTC)  # aware, in UTC
    assert (row.id, row.status, row.partner_timezone) == (client_id, "trial", "UTC")


def test_a_prepared_read_converts_its_parameters_and_keeps_the_values_the_statement_carries(
    database, http, partner, clock
):
    client_id, _, _ = client_with_user(http, partner, clock, "trial", "reader@client.test")
    ending = PreparedSelect(
        select(Client.id).where(
            Client.status == "trial",  # a value of the statement's own
            Client.trial_ends_at > bindparam("after", type_=UTCDateTime()),
        )
    )
    with database.reader() as conn:
        assert ending.run(conn, after=datetime(2026, 3, 20, tzinfo=UTC)) == [(client_id,)]
        assert ending.run(conn, after=datetime(2026, 3, 25, tzinfo=UTC)) == []
        with pytest.raises(ValueError, match="naive datetime"):  # UTCDateTime's own check ran
            ending.run(conn, after=datetime(2026, 3, 20))


def test_a_remembered_row_is_the_same_row_until_its_values_change(database, http, partner, clock):
    client_id, _, _ = client_with_user(http, partner, clock, "trial", "reader@client.test")
    status = PreparedSelect(
        select(Client.id, Client.status, Client.trial_ends_at).where(Client.id == bindparam("id")), memo=8
    )
    with database.reader() as conn:
        first, again = status.run(conn, id=client_id), status.run(conn, id=client_id)
    assert first == again and first[0] is again[0]  # converted once
    assert first[0].trial_ends_at == datetime(2026, 3, 24, 12, tzinfo=UTC)
    set_status(http, partner, client_id, "active")
    with database.reader() as conn:
        changed = status.run(conn, id=client_id)
    assert changed[0] is not first[0] and changed[0].status == "active"


def test_a_row_holding_a_value_that_can_change_is_not_remembered(database, http, partner, clock):
    client_id, _, _ = client_with_user(http, partner, clock, "trial", "reader@client.test")
    board = http.post(
        f"/api/1/clients/{client_id}/dashboards", json={"name": "Board"}, headers=partner.headers
    )
    filters = PreparedSelect(select(Dashboard.filters).where(Dashboard.id == bindparam("id")), memo=8)
    with database.reader() as conn:
        first, again = filters.run(conn, id=board.json()["id"]), filters.run(conn, id=board.json()["id"])
    assert first == again == [([],)]
    assert first[0] is not again[0]  # a list: another request could change it


def test_remembered_rows_are_bounded(database, http, partner, clock):
    ids = [client_with_user(http, partner, clock, "trial", f"r{n}@client.test")[0] for n in range(3)]
    name = PreparedSelect(select(Client.id, Client.name).where(Client.id == bindparam("id")), memo=2)
    with database.reader() as conn:
        rows = [name.run(conn, id=client_id)[0] for client_id in ids]
        compiled = next(iter(name._compiled.values()))
        assert len(compiled.remembered) <= 2
        assert [row.id for row in rows] == ids  # each its own row, whatever was let go


def test_an_expanding_in_list_is_refused_rather_than_run_wrong(database):
    many = PreparedSelect(select(Client.id).where(Client.id.in_(bindparam("ids", expanding=True))))
    with database.reader() as conn, pytest.raises(ValueError, match="expanding"):
        many.run(conn, ids=[1, 2])


def test_the_reads_on_the_event_loop_return_what_sqlalchemy_returns(database, http, partner, clock):
    """The same statements through `db.reads` (asyncpg on PostgreSQL, the loop's own connection on
    SQLite): the same values and types, JSON columns and UTC datetimes included."""
    client_id, user, client_headers = client_with_user(http, partner, clock, "trial", "reader@client.test")
    DatabaseCounter(database).hit(client_scope(client_id), "2026-03-10", 100, 60)
    source = http.post(
        f"/api/1/clients/{client_id}/datasources",
        json={"name": "Sales", "kind": "inline", "rows": [{"month": "Jan", "sales": 3}]},
        headers=partner.headers,
    ).json()
    klip = {"title": "Sales", "kind": "value", "datasource_id": source["id"], "columns": {"value": "sales"}}
    board = http.post(
        f"/api/1/clients/{client_id}/dashboards",
        json={"name": "Board", "klips": [klip]},
        headers=partner.headers,
    ).json()
    link = http.post(
        f"/api/1/dashboards/{board['id']}/published-links",
        json={"name": "Site", "allowed_origins": ["https://shop.example"]},
        headers=partner.headers,
    ).json()
    token = link["url"].rsplit("/", 1)[1]
    own = {"partner_id": partner.id, "client_id": client_id}
    cases = [
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(partner.headers)}),
        (auth_repo._KEY_LOOKUP, {"prefix": prefix_of(client_headers)}),
        (
            clients_repo.CLIENT_WITH_KEY.lookup,
            {"prefix": prefix_of(partner.headers), "client_id": client_id, "scope": client_scope(client_id)},
        ),
        (users_repo.ME_WITH_KEY.lookup, {"prefix": prefix_of(client_headers)}),
        (clients_repo._CLIENT_ROW_OF_PARTNER, own),
        (clients_repo._CLIENT_ROW_OF_CLIENT_USER, {**own, "own_client_id": client_id}),
        (counters._COUNT_ONE, {"day": "2026-03-10", "scope": client_scope(client_id)}),
        (links_repo._PUBLIC_WITH_KLIPS, {"token_hash": hash_link_token(token)}),
        (users_repo._PARTNER_USER, {"user_id": partner.admin_user_id, "partner_id": partner.id}),
        (users_repo._CLIENT_USER_AND_CLIENT, {**own, "user_id": user["id"]}),
    ]
    with database.reader() as conn:
        expected = [[tuple(row) for row in conn.execute(query.statement, params)] for query, params in cases]
    database_reads = DatabaseReads(database, max_size=2, timeout=5)

    async def read_all() -> list[list[tuple[object, ...]]]:
        await database_reads.open()
        try:
            async with database_reads.connection() as reads:
                return [[tuple(row) for row in await reads.run(query, **params)] for query, params in cases]
        finally:
            await database_reads.close()

    got = asyncio.run(read_all())
    assert [len(rows) for rows in expected] == [1] * len(cases)
    assert got == expected
    assert [[type(value) for value in rows[0]] for rows in got] == [
        [type(value) for value in rows[0]] for rows in expected
    ]
    public = got[7][0]
    # The JSON columns come as text, decoded once per link (`links.repository._link_of`).
    assert '["https://shop.example"]' in public and "[]" in public
    assert public[-8:-5] == (board["klips"][0]["id"], "value", "Sales")  # with the dashboard's klip

"""The connectors' migration (SPEC §14): existing sources keep what they were, with no settings
and no secrets; the `sql` kind and client properties arrive; going back removes sql sources (and
the klips showing them) and the properties, and keeps everything else. On SQLite, and on
PostgreSQL when TENANTRY_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tenantry.db.migrate import alembic_config, upgrade
from tests.db import migrating
from tests.db.migrating import NOW

BEFORE = "0014_klips_second_edition"


@pytest.fixture(params=migrating.ENGINES)
def before(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database at the revision before the connectors, with a partner, a client, a url
    and an inline source and a klip showing the url source."""
    with migrating.fresh_database(request.param, tmp_path) as url:
        upgrade(url, BEFORE)
        with migrating.filling(url) as add:
            add("partners", id=1, name="P", timezone="UTC", currency="USD")
            add("clients", id=1, partner_id=1, name="C", status="setup")
            add("data_sources", id=1, partner_id=1, client_id=1, name="Url", kind="url",
                url="https://example.com/a.csv", format="csv", rows=[])  # fmt: skip
            add(
                "data_sources", id=2, partner_id=1, client_id=1, name="Inline", kind="inline", rows=[{"a": 1}]
            )
            add("dashboards", id=1, partner_id=1, client_id=1, name="D")
            add("klips", id=1, dashboard_id=1, position=0, kind="table", datasource_id=1, definition={})
        yield url


def test_existing_sources_keep_everything_and_have_no_settings_or_secrets(before):
    upgrade(before)
    assert migrating.rows(before, "SELECT id, kind, url, config, secrets FROM data_sources ORDER BY id") == [
        (1, "url", "https://example.com/a.csv", None, None),
        (2, "inline", None, None, None),
    ]


def test_sql_sources_and_properties_are_stored_and_the_kind_still_checked(before):
    upgrade(before)
    engine = create_engine(before)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO data_sources (id, partner_id, client_id, name, kind, config, secrets, rows,"
                " row_count, version, refresh_fail_count, created_at, updated_at)"
                " VALUES (3, 1, 1, 'Sql', 'sql', :config, 'v1.abcd.sealed', '[]', 0, '', 0, :now, :now)"
            ),
            {"config": json.dumps({"engine": "postgresql"}), "now": NOW},
        )
        conn.execute(
            text("INSERT INTO client_properties (client_id, key, value) VALUES (1, 'account', 'a-1')")
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE data_sources SET kind = 'ftp' WHERE id = 1"))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one value per key
        conn.execute(text("INSERT INTO client_properties (client_id, key, value) VALUES (1, 'account', 'b')"))
    engine.dispose()


def test_going_back_removes_sql_sources_their_klips_and_the_properties_and_keeps_the_rest(before):
    upgrade(before)
    engine = create_engine(before)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO data_sources (id, partner_id, client_id, name, kind, rows, row_count, version,"
                " refresh_fail_count, created_at, updated_at) VALUES (3, 1, 1, 'Sql', 'sql', '[]', 0, '', 0,"
                " :now, :now)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO klips (id, dashboard_id, position, title, kind, datasource_id, definition)"
                " VALUES (2, 1, 1, 'Sql', 'table', 3, '{}')"
            )
        )
        conn.execute(
            text("INSERT INTO client_properties (client_id, key, value) VALUES (1, 'account', 'a-1')")
        )
    engine.dispose()
    command.downgrade(alembic_config(before), BEFORE)
    assert migrating.rows(before, "SELECT id, kind FROM data_sources ORDER BY id") == [
        (1, "url"),
        (2, "inline"),
    ]
    assert migrating.rows(before, "SELECT id, datasource_id FROM klips ORDER BY id") == [(1, 1)]
    engine = create_engine(before)
    names = inspect(engine).get_table_names()
    columns = {c["name"] for c in inspect(engine).get_columns("data_sources")}
    engine.dispose()
    assert "client_properties" not in names
    assert not {"config", "secrets"} & columns
    upgrade(before)  # and forward again
    assert migrating.rows(before, "SELECT count(*) FROM client_properties") == [(0,)]


def test_ids_of_data_sources_are_still_never_reused_on_sqlite(before):
    if not before.startswith("sqlite"):
        pytest.skip("PostgreSQL identities never hand out an id twice")
    upgrade(before)
    (sql,) = migrating.rows(before, "SELECT sql FROM sqlite_master WHERE name = 'data_sources'")[0]
    assert "AUTOINCREMENT" in sql.upper()

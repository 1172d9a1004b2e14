"""The connectors' migration (SPEC §14): existing sources keep what they were, with no settings
and no secrets; the `sql` kind and client properties arrive; going back removes sql sources (and
the klips showing them) and the properties, and keeps everything else. On SQLite, and on
PostgreSQL when TENANTRY_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import (
    JSON,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from tenantry.db.migrate import alembic_config, upgrade
from tenantry.settings import Settings
from tests.conftest import PG_URL

BEFORE = "0014_klips_second_edition"
NOW = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)


def _filled(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or (column.primary_key and column.name == "id"):
            continue
        if column.server_default is not None:
            continue
        if isinstance(column.type, Integer | Numeric):
            row[column.name] = 0
        elif isinstance(column.type, JSON):
            row[column.name] = {}
        elif isinstance(column.type, String | Text):
            row[column.name] = "x"
        else:
            row[column.name] = NOW
    return row


def _engines() -> list[str]:
    return ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@pytest.fixture(params=_engines())
def before(request, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database at the revision before the connectors, with a partner, a client, a url
    and an inline source and a klip showing the url source."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'before.db'}"
        admin = None
    else:
        server = make_url(Settings(database_url=PG_URL).sqlalchemy_url)  # type: ignore[arg-type]
        name = f"tenantry_migration_{uuid.uuid4().hex[:12]}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url, BEFORE)
        engine = create_engine(url)
        tables = MetaData()
        tables.reflect(engine)
        with engine.begin() as conn:

            def add(table: str, **values: Any) -> None:
                conn.execute(insert(tables.tables[table]).values(_filled(tables.tables[table], values)))

            add("partners", id=1, name="P", timezone="UTC", currency="USD")
            add("clients", id=1, partner_id=1, name="C", status="setup")
            add("data_sources", id=1, partner_id=1, client_id=1, name="Url", kind="url",
                url="https://example.com/a.csv", format="csv", rows=[])  # fmt: skip
            add(
                "data_sources", id=2, partner_id=1, client_id=1, name="Inline", kind="inline", rows=[{"a": 1}]
            )
            add("dashboards", id=1, partner_id=1, client_id=1, name="D")
            add("klips", id=1, dashboard_id=1, position=0, kind="table", datasource_id=1, definition={})
        engine.dispose()
        yield url
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
            admin.dispose()


def _rows(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def test_existing_sources_keep_everything_and_have_no_settings_or_secrets(before):
    upgrade(before)
    assert _rows(before, "SELECT id, kind, url, config, secrets FROM data_sources ORDER BY id") == [
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
    assert _rows(before, "SELECT id, kind FROM data_sources ORDER BY id") == [(1, "url"), (2, "inline")]
    assert _rows(before, "SELECT id, datasource_id FROM klips ORDER BY id") == [(1, 1)]
    engine = create_engine(before)
    names = inspect(engine).get_table_names()
    columns = {c["name"] for c in inspect(engine).get_columns("data_sources")}
    engine.dispose()
    assert "client_properties" not in names
    assert not {"config", "secrets"} & columns
    upgrade(before)  # and forward again
    assert _rows(before, "SELECT count(*) FROM client_properties") == [(0,)]


def test_ids_of_data_sources_are_still_never_reused_on_sqlite(before):
    if not before.startswith("sqlite"):
        pytest.skip("PostgreSQL identities never hand out an id twice")
    upgrade(before)
    (sql,) = _rows(before, "SELECT sql FROM sqlite_master WHERE name = 'data_sources'")[0]
    assert "AUTOINCREMENT" in sql.upper()

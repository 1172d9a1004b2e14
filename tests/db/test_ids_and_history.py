"""Ids are never handed out twice, and audit records are read per partner (SPEC §12 "History is
kept"). On SQLite every table with an integer id is AUTOINCREMENT; the migration that made them so
keeps every row and starts each sequence above the highest id anything still names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Integer, MetaData, Numeric, String, Table, Text, create_engine, insert
from sqlalchemy.exc import IntegrityError

from tenantry.db.migrate import upgrade
from tenantry.db.models import AuditEvent, Base
from tests.factories import ADMIN_PASSWORD, admin_email, sign_in


def new_client(http, partner, name: str) -> int:
    response = http.post("/api/1/clients", json={"name": name}, headers=partner.headers)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


class TestIdsAreNeverReused:
    def test_a_deleted_clients_id_is_never_given_to_another_partners_next_client(self, http, make_partner):
        a, b = make_partner("A"), make_partner("B")
        new_client(http, a, "A's first")
        gone = new_client(http, b, "B's newest")
        assert http.delete(f"/api/1/clients/{gone}", headers=b.headers).status_code == 204

        assert new_client(http, a, "A's next") > gone

    def test_a_deleted_data_sources_id_is_never_given_to_the_next_one(self, http, partner):
        client_id = new_client(http, partner, "C")
        body = {"name": "S", "kind": "inline", "rows": [{"a": 1}]}
        url = f"/api/1/clients/{client_id}/datasources"
        gone = http.post(url, json=body, headers=partner.headers).json()["id"]
        assert http.delete(f"/api/1/datasources/{gone}", headers=partner.headers).status_code == 204

        assert http.post(url, json=body, headers=partner.headers).json()["id"] > gone


def test_a_client_page_lists_only_its_own_partners_audit_records(http, make_partner, db, clock):
    """Records outlive their client: a client id alone may name another partner's (a database
    from before ids were kept unique may hold such records)."""
    a, b = make_partner("A"), make_partner("B")
    client_id = new_client(http, a, "A's client")
    db.add(
        AuditEvent(
            partner_id=b.id,
            client_id=client_id,
            actor="partner_user:999",
            action="client.secret_of_b",
            target=f"client:{client_id}",
            at=clock.now(),
            details={},
        )
    )
    db.commit()
    email = admin_email(db, a)
    db.rollback()
    assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303

    page = http.get(f"/partner/clients/{client_id}")

    assert page.status_code == 200
    assert "client.created" in page.text
    assert "client.secret_of_b" not in page.text


# The migration, on a SQLite file of its own (whatever database the suite runs on).

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _filled(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """A row with every required column given: the values, then a plain default by type."""
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or (column.primary_key and column.name == "id"):
            continue
        if isinstance(column.type, Boolean):
            row[column.name] = False
        elif isinstance(column.type, Integer | Numeric):
            row[column.name] = 0
        elif isinstance(column.type, JSON):
            row[column.name] = {}
        elif isinstance(column.type, String | Text):
            row[column.name] = "x"
        else:
            row[column.name] = NOW.replace(tzinfo=None)
    return row


@pytest.fixture
def old_database(tmp_path: Path) -> str:
    """A SQLite database at the revision before AUTOINCREMENT, with rows deleted at the top."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0005")
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)

    def add(table_name: str, **values: Any) -> None:
        table = tables.tables[table_name]
        conn.execute(insert(table).values(_filled(table, values)))

    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        add("partners", id=1, name="P", timezone="UTC", currency="USD")
        for client_id in (1, 2, 3):
            add("clients", id=client_id, partner_id=1, name=f"C{client_id}", status="active")
            add("status_changes", partner_id=1, client_id=client_id, to_status="active", at=NOW)
        add("client_users", id=1, client_id=1, email="u@c.test", role="admin")
        add("dashboards", id=1, partner_id=1, client_id=1, name="D1")
        add("dashboards", id=2, partner_id=1, client_id=1, name="D2")
        # Client 5 and dashboard 7 were deleted long ago; the audit log and the outbox still name them.
        add("audit_events", partner_id=1, client_id=5, action="client.deleted", target="client:5", at=NOW)
        add(
            "audit_events",
            partner_id=1,
            client_id=1,
            action="dashboard.deleted",
            target="dashboard:7",
            at=NOW,
        )
        add("events", id="evt_1", partner_id=1, client_id=4, type="client.deleted", created_at=NOW)
        conn.execute(tables.tables["clients"].delete().where(tables.tables["clients"].c.id == 3))
    engine.dispose()
    return url


def test_the_migration_keeps_every_row_and_starts_ids_above_the_highest_ever_named(old_database):
    upgrade(old_database)

    engine = create_engine(old_database)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        assert conn.exec_driver_sql("SELECT id, name FROM clients ORDER BY id").all() == [
            (1, "C1"),
            (2, "C2"),
        ]
        assert conn.exec_driver_sql("SELECT id FROM dashboards ORDER BY id").scalars().all() == [1, 2]
        assert conn.exec_driver_sql("SELECT count(*) FROM client_users").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []

        conn.exec_driver_sql(
            "INSERT INTO clients (partner_id, name, description, status, alloc_dashboards, alloc_users,"
            " alloc_published_links, alloc_api_calls_per_day, usage_dashboards, usage_users,"
            " usage_published_links, created_at, status_changed_at)"
            " VALUES (1, 'New', '', 'setup', 0, 0, 0, 0, 0, 0, 0, '2026-03-02', '2026-03-02')"
        )
        assert conn.exec_driver_sql("SELECT max(id) FROM clients").scalar() == 6  # above 5, named by the log
        conn.exec_driver_sql(
            "INSERT INTO dashboards (partner_id, client_id, name, created_at, updated_at)"
            " VALUES (1, 1, 'New', '2026-03-02', '2026-03-02')"
        )
        assert conn.exec_driver_sql("SELECT max(id) FROM dashboards").scalar() == 8
        # The rebuilt tables keep their constraints.
        with pytest.raises(IntegrityError):
            conn.exec_driver_sql("UPDATE clients SET status = 'bogus' WHERE id = 1")
    engine.dispose()


def test_every_sqlite_table_with_an_integer_id_is_autoincrement(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        created = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'table'").all())
    engine.dispose()
    generated_ids = [t.name for t in Base.metadata.sorted_tables if t.autoincrement_column is not None]
    assert "clients" in generated_ids
    assert [name for name in generated_ids if "AUTOINCREMENT" not in created[name]] == []

"""SQLite hands out no id twice (SPEC §12 "ids are never reused"), also across an upgrade: a
table's rebuild by a migration keeps its AUTOINCREMENT counter, and databases upgraded before
that have their counters set again above every id still named (0027)."""

from __future__ import annotations

import sqlite3

import pytest

from tenantry.db.migrate import upgrade

NOW = "2026-03-01 00:00:00.000000"


def _old_database(path):
    url = f"sqlite:///{path}"
    upgrade(url, "0013_statement_index")  # a release before klips' second edition (0014)
    c = sqlite3.connect(path)
    c.execute(
        "INSERT INTO partners (name, timezone, created_at, plan_dashboards, plan_users, plan_published_links,"
        " plan_api_calls_per_day, trial_days, trial_extension_days, dashboard_price, user_price, currency,"
        " used_dashboards, used_users, used_published_links, allocated_dashboards, allocated_users,"
        " allocated_published_links, allocated_api_calls_per_day, client_count)"
        " VALUES ('P', 'UTC', ?, -1, -1, -1, -1, 14, 14, 10, 5, 'USD', 3, 0, 0, 0, 0, 0, 0, 1)",
        (NOW,),
    )
    c.execute(
        "INSERT INTO clients (partner_id, name, description, status, alloc_dashboards, alloc_users,"
        " alloc_published_links, alloc_api_calls_per_day, usage_dashboards, usage_users,"
        " usage_published_links, created_at, status_changed_at)"
        " VALUES (1, 'C', '', 'trial', 5, 5, 0, 0, 0, 3, 0, ?, ?)",
        (NOW, NOW),
    )
    for n in (1, 2, 3):
        c.execute(
            "INSERT INTO dashboards (partner_id, name, created_at, updated_at) VALUES (1, ?, ?, ?)",
            (f"D{n}", NOW, NOW),
        )
        c.execute(
            "INSERT INTO client_users (client_id, email, name, role, created_at)"
            " VALUES (1, ?, 'u', 'member', ?)",
            (f"u{n}@c.test", NOW),
        )
        c.execute(
            "INSERT INTO data_sources (partner_id, name, kind, refresh_fail_count, rows, row_count, version,"
            " created_at, updated_at) VALUES (1, ?, 'inline', 0, '[]', 0, 'v', ?, ?)",
            (f"S{n}", NOW, NOW),
        )
        c.execute(
            "INSERT INTO klips (dashboard_id, position, title, kind, datasource_id, columns)"
            " VALUES (1, ?, 'k', 'value', 1, '{}')",
            (n,),
        )
    # The newest of each is deleted (and, as ever, its audit record stays).
    for table in ("dashboards", "client_users", "data_sources", "klips"):
        c.execute(f"DELETE FROM {table} WHERE id = 3")
    c.commit()
    c.close()
    return url


@pytest.mark.parametrize(
    ("table", "insert"),
    [
        (
            "dashboards",
            "INSERT INTO dashboards (partner_id, name, created_at, updated_at) VALUES (1, 'new', ?, ?)",
        ),
        (
            "client_users",
            "INSERT INTO client_users (client_id, email, name, role, created_at)"
            " VALUES (1, 'new@c.test', 'n', 'member', ?)",
        ),
        (
            "data_sources",
            "INSERT INTO data_sources (partner_id, name, kind, refresh_fail_count, rows, row_count, version,"
            " created_at, updated_at) VALUES (1, 'new', 'inline', 0, '[]', 0, 'v', ?, ?)",
        ),
        (
            "klips",
            "INSERT INTO klips (dashboard_id, position, title, kind, definition)"
            " VALUES (1, 9, 'new', 'value', '{}')",
        ),
    ],
)
def test_an_upgrade_never_lets_a_deleted_id_be_handed_out_again(tmp_path, table, insert):
    path = tmp_path / "old.db"
    url = _old_database(path)
    upgrade(url)  # to the present schema
    c = sqlite3.connect(path)
    c.execute(insert, (NOW,) * insert.count("?"))
    new_id = c.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
    c.close()
    assert new_id > 3, f"the new row of {table} took id {new_id}, which a deleted row had"


def test_a_database_whose_counters_an_earlier_upgrade_dropped_gets_them_back(tmp_path):
    path = tmp_path / "old.db"
    url = _old_database(path)
    upgrade(url, "0026_client_timezone")
    c = sqlite3.connect(path)
    # As the rebuilds of 0014 and 0015 left it before migrations kept the counters: the highest id
    # present. The deleted user and source are still named by the audit log.
    c.execute("UPDATE sqlite_sequence SET seq = 2 WHERE name IN ('client_users', 'data_sources')")
    c.executemany(
        "INSERT INTO audit_events (partner_id, client_id, actor, action, target, at, details)"
        " VALUES (1, 1, 'partner_user:1', 'deleted', ?, ?, '{}')",
        [("client_user:3", NOW), ("datasource:3", NOW)],
    )
    c.commit()
    c.close()

    upgrade(url)

    c = sqlite3.connect(path)
    counters = dict(
        c.execute("SELECT name, seq FROM sqlite_sequence WHERE name IN ('client_users', 'data_sources')")
    )
    c.close()
    assert counters == {"client_users": 3, "data_sources": 3}

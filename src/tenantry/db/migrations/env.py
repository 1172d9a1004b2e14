from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import event

from tenantry.db.models import Base
from tenantry.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from tenantry.settings import Settings

        url = Settings().sqlalchemy_url
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA foreign_keys=OFF")


def _check_foreign_keys(connection: Any) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"the migration left rows that refer to missing rows: {broken[:5]}")


def _id_counters(connection: Any) -> dict[str, int]:
    """SQLite's AUTOINCREMENT counters (the highest id each table ever handed out), before migrating."""
    if connection.dialect.name != "sqlite":
        return {}
    if not connection.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
    ).scalar():
        return {}
    return {
        name: int(seq) for name, seq in connection.exec_driver_sql("SELECT name, seq FROM sqlite_sequence")
    }


def _keep_id_counters(connection: Any, counters: dict[str, int]) -> None:
    """Put back the counters a table's rebuild (batch mode copies it into a new table) dropped to
    its highest id still present: a deleted row's id is never handed out again (SPEC §12)."""
    for table, seq in counters.items():
        connection.exec_driver_sql(
            "UPDATE sqlite_sequence SET seq = ? WHERE name = ? AND seq < ?", (seq, table, seq)
        )
        connection.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS"
            " (SELECT 1 FROM sqlite_sequence WHERE name = ?)"
            " AND EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            " AND upper(sql) LIKE '%AUTOINCREMENT%')",
            (table, seq, table, table),
        )


def run_migrations_online() -> None:
    engine = make_engine(_url())
    if engine.dialect.name == "sqlite":
        # SQLite alters a table by rebuilding it (batch mode) and dropping the old one; with
        # foreign keys enforced, that drop would delete every row referring to it. Alembic asks for
        # them off while migrating; the migrations are checked against them before they commit.
        event.listen(engine, "connect", _foreign_keys_off)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            counters = _id_counters(connection)
            context.run_migrations()
            if connection.dialect.name == "sqlite":
                _check_foreign_keys(connection)
        if counters:  # alembic runs SQLite's migrations without a transaction around them all
            _keep_id_counters(connection, counters)
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

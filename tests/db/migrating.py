"""Helpers of the migration tests: rows for tables as an older revision left them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    text,
)
from sqlalchemy.engine import make_url

from tenantry.settings import Settings
from tests.conftest import PG_URL

NOW = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
# The engines a migration is tried on: SQLite, and PostgreSQL when the tests are given one.
ENGINES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]


@contextmanager
def fresh_database(engine: str, folder: Path) -> Iterator[str]:
    """The URL of an empty database of its own on `engine` (a file in `folder`, or a database made
    on the test PostgreSQL server and dropped afterwards)."""
    if engine == "sqlite":
        yield f"sqlite:///{folder / 'migrating.db'}"
        return
    server = make_url(Settings(database_url=PG_URL).sqlalchemy_url)  # type: ignore[arg-type]
    name = f"tenantry_migration_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield server.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def filled(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """A row with every required column given: the values, then a plain default by type (none for a
    column the database gives a default itself)."""
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or (column.primary_key and column.name == "id"):
            continue
        if column.server_default is not None:
            continue
        if isinstance(column.type, Integer | Numeric):
            row[column.name] = 0
        elif isinstance(column.type, JSON):
            row[column.name] = []
        elif isinstance(column.type, String | Text):
            row[column.name] = "x"
        else:
            row[column.name] = NOW
    return row


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows `sql` reads from the database at `url`, as tuples."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            return [tuple(row) for row in conn.execute(text(sql)).all()]
    finally:
        engine.dispose()


@contextmanager
def filling(url: str) -> Iterator[Callable[..., None]]:
    """`add(table, **values)`: rows for the database at `url` as its revision left it (the tables
    read from it), their required columns filled, inserted in one transaction."""
    engine = create_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    try:
        with engine.begin() as conn:

            def add(table: str, **values: Any) -> None:
                conn.execute(insert(tables.tables[table]).values(filled(tables.tables[table], values)))

            yield add
    finally:
        engine.dispose()

"""Engine and sessions.

SQLite runs in WAL mode with foreign keys on. Write requests open an *immediate* transaction on
SQLite (it takes the write lock at BEGIN), which is how pool checks serialise there; on PostgreSQL
the pool check locks the partner row instead (see `clients.repository.lock_partner`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

IMMEDIATE = "tenantry_sqlite_immediate"
STATEMENT_READS = "tenantry_sqlite_statement_reads"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for an in-memory database or a `file:` URI)."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_private(path: Path) -> None:
    """Create the database file readable and writable by its owner alone, unless it exists.

    SQLite would create it with the umask's permissions (usually 0644: anyone on the machine could
    read the password hashes and secrets in it); it gives the `-wal` and `-shm` files the
    permissions of the database file, so they are private too. An existing file is left as it is.
    """
    # Already there, or no such folder (SQLite says so when it connects): nothing to do.
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        path = sqlite_path(url)

        @event.listens_for(engine, "do_connect")
        def _sqlite_private_file(*_args: Any) -> None:
            if path is not None:
                create_private(path)

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is unreliable).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            options = conn.get_execution_options()
            if options.get(IMMEDIATE):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif not options.get(STATEMENT_READS):
                conn.exec_driver_sql("BEGIN")

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


class Database:
    """The engine, two session factories (one for reads, one for writes) and a reader."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(**{IMMEDIATE: True}), expire_on_commit=False)
        # SQLite: no BEGIN (see `_sqlite_begin`). PostgreSQL: autocommit, which saves the BEGIN and
        # ROLLBACK round trips of a read.
        reader = {STATEMENT_READS: True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        self._reader = self.engine.execution_options(**reader)

    def session(self, write: bool = False) -> Session:
        return (self._write if write else self._read)()

    def reader(self) -> Connection:
        """A connection for reads of one statement each, outside any request's transaction.

        It opens no transaction (SQLite: no BEGIN; PostgreSQL: autocommit): each SELECT reads one
        consistent snapshot, and the hottest reads (the API key, the client, the meter) save the
        statements or round trips of beginning and ending one.
        """
        return self._reader.connect()

    def dispose(self) -> None:
        self.engine.dispose()

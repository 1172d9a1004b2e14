"""Engine and sessions.

SQLite runs in WAL mode with foreign keys on. Write requests open an *immediate* transaction on
SQLite (it takes the write lock at BEGIN), which is how pool checks serialise there; on PostgreSQL
the pool check locks the partner row instead (see `partners.repository.lock_partner`).

Every wait is short and bounded, so a database that is down, locked or full is noticed in seconds
(and answered 503 `database_unavailable`) instead of holding requests for half a minute: a free
connection from the pool, a new PostgreSQL connection, SQLite's write lock and PostgreSQL's row
locks each wait at most a few seconds (settings `TENANTRY_DB_*`). Connections are checked before
use (`pool_pre_ping`), so the first request after a database restart gets a fresh one. Statement
parameters never appear in error messages (`hide_parameters`): they may hold secrets.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from tenantry.db.text import unicode_lower

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


DEFAULT_POOL_SIZE = 10
DEFAULT_MAX_OVERFLOW = 10


def make_engine(
    url: str,
    *,
    pool_size: int = DEFAULT_POOL_SIZE,
    max_overflow: int = DEFAULT_MAX_OVERFLOW,
    pool_timeout: float = 5.0,
    connect_timeout: int = 3,
    lock_timeout: float = 5.0,
    **kwargs: Any,
) -> Engine:
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": lock_timeout, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_timeout=pool_timeout,
            **kwargs,
        )
        busy_ms = max(1, round(lock_timeout * 1000))
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
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.close()
            # Lower case in every alphabet, as PostgreSQL's lower() has it (`db.text`).
            dbapi_connection.create_function("unicode_lower", 1, unicode_lower, deterministic=True)

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            options = conn.get_execution_options()
            if options.get(IMMEDIATE):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif not options.get(STATEMENT_READS):
                conn.exec_driver_sql("BEGIN")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        connect_args={
            "connect_timeout": connect_timeout,
            # Row locks (the partner row of a pool check) are held for milliseconds; waiting longer
            # than this means something is stuck, and the request is better answered 503.
            "options": f"-c lock_timeout={max(1, round(lock_timeout * 1000))}",  # 0 would be no limit
        },
        **kwargs,
    )


class Database:
    """The engine, two session factories (one for reads, one for writes) and a reader."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        max_overflow: int = DEFAULT_MAX_OVERFLOW,
        **kwargs: Any,
    ) -> None:
        self.url = url
        # Connections this process may open at most (its share of the server's `max_connections`).
        self.capacity = pool_size + max_overflow
        self.engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow, **kwargs)
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


def database_from_settings(settings: Any) -> Database:
    """The database named by the settings, with the pool sizes and time-outs they give; with Redis,
    its writes change the generation the key lookups' caches follow (`db.generation`)."""
    from tenantry.db.generation import watch_key_writes

    database = Database(
        settings.sqlalchemy_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
        lock_timeout=settings.db_lock_timeout_seconds,
    )
    watch_key_writes(database.engine, settings.redis_url)
    return database

"""Run the Alembic migrations that ship inside the package (works from any directory)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@functools.cache
def head_revision() -> str:
    """The revision the code expects: the newest migration that ships with it."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def unmigrated_reason(engine: Engine) -> str | None:
    """Why the code cannot run on this database yet (None when it can); raises when unreachable."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current == head:
        return None
    if current is None:
        return "the database has no tables yet; run `tenantry db upgrade` first"
    return f"the database is at revision {current}, the code needs {head}; run `tenantry db upgrade` first"

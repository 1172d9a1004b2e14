"""What every model file builds on: `Base` (one metadata, with its naming convention), the id type
and the UTC datetime column type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, Table
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from tenantry.clock import as_utc

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes in, UTC datetimes out, on SQLite (naive storage) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if isinstance(table, Table):
            _ids_never_reused(table)


def _ids_never_reused(table: Table) -> None:
    """A table with a generated integer id is AUTOINCREMENT on SQLite.

    Without it SQLite hands out the highest id in use + 1, so deleting the newest client would let
    the next one, of any partner, take its id and with it whatever still names that id (audit
    records, API-call counters). PostgreSQL identities never hand out an id twice anyway.
    """
    if table.autoincrement_column is not None:
        table.dialect_kwargs["sqlite_autoincrement"] = True


# Integer ids: 64-bit on PostgreSQL, SQLite's INTEGER (which is 64-bit too, and the rowid).
ids = BigInteger().with_variant(Integer(), "sqlite")

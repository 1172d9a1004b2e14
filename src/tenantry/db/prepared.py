"""Prepared reads: a Core SELECT compiled once per dialect and run on the driver's cursor.

SQLAlchemy's execution path (cache key, compiled-statement cache, events, result wrapping) costs
several times the query itself on a local SQLite file: about 100 µs against 20 µs for the API-key
lookup. The reads every API request makes (the key, the client, the meter) run through here
instead. The statement is still built with SQLAlchemy and compiled by the dialect; each column's
type still converts its value (UTC datetimes included); `tests/db/test_prepared.py` checks every
prepared statement against SQLAlchemy's own execution on SQLite and PostgreSQL.

Only plain bound parameters (no expanding `IN` lists), and only reads: the statement runs on the
connection's current driver transaction (none at all on a SQLite reader, see `Database.reader`).

**Rows remembered** (`PreparedSelect(statement, memo=N)`): the row made of the same values the
driver returned is the same row, converted once (a datetime parsed, a named tuple built) for up to
N distinct rows: the hot reads find the same key, client and link again and again, and converting
cost a fifth of a read on SQLite (5 µs of a key lookup with its client, 8 µs of a published page's
link). A row is a function of the driver's values alone, so a remembered one is never stale; only
rows whose values are all immutable are kept (shared between requests, they must not change), and
only values that can be hashed are looked up (a JSON column the driver decodes cannot). Values
Python holds equal (1 and 1.0) make one row: a statement whose column may hold either, and must
tell them apart, is not one to remember.

On PostgreSQL a lookup can also run for many sets of parameters at once (`run_many_async`): one
statement that reads each set's rows side by side (`unnest` of the parameters, with ordinality,
joined laterally to the statement), so that many requests' lookups cost one round trip and one
execution (`db.reads` runs so the key lookups and published-page reads of the requests that arrive
together).
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, func
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


# What a remembered row may hold: values no one can change.
_IMMUTABLE = frozenset(
    {str, int, float, bool, type(None), bytes, datetime, date, time, timedelta, Decimal, UUID}
)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positions: tuple[str, ...] | None  # positional paramstyles: the parameters' order
    binds: Mapping[str, Processor]
    defaults: Mapping[str, Any]  # the values of parameters the statement carries itself
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]  # (column, conversion), where there is one
    # The driver's values of a row -> the row (this driver's: another converts its values otherwise).
    remembered: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class _Batched:
    sql: str
    varying: tuple[bool, ...]  # by position: an array of every set's values, or the statement's own
    required: frozenset[str]  # the parameters each set names
    ordered: bool  # each set's rows carry their place in the statement's order, last


class PreparedSelect:
    """A SELECT with named bound parameters; `run(conn, name=value, ...)` returns its rows.

    Rows are named tuples whose fields are the selected columns' keys (a repeated key gets a
    positional name, so read such rows by position).
    """

    def __init__(self, statement: Select[*tuple[Any, ...]], *, memo: int = 0) -> None:
        self.statement = statement
        self.memo = memo  # how many distinct rows are remembered (see the module's description)
        keys = list(statement.selected_columns.keys())
        self._row = namedtuple("_Row", keys, rename=True)  # type: ignore[misc]
        self._compiled: dict[str, _Compiled] = {}
        self._batched: _Batched | None = None

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("a prepared read takes plain parameters only, not expanding IN lists")
        return _Compiled(
            sql=compiled.string,
            positions=tuple(compiled.positiontup or ()) if compiled.positional else None,
            binds={
                name: bind.type.dialect_impl(dialect).bind_processor(dialect)
                for name, bind in compiled.binds.items()
            },
            defaults={
                name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required
            },
            processors=tuple(
                (i, process)
                for i, column in enumerate(self.statement.selected_columns)
                if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
            ),
        )

    def _prepare(self, dialect: Dialect, params: dict[str, Any]) -> tuple[_Compiled, Any]:
        # By driver too: psycopg and asyncpg compile the same statement differently.
        compiled = self._compiled.get(dialect.driver)
        if compiled is None:
            compiled = self._compiled[dialect.driver] = self._compile(dialect)
        bound = {
            name: (process(value) if (process := compiled.binds.get(name)) else value)
            for name, value in {**compiled.defaults, **params}.items()
        }
        arguments: Any = (
            bound if compiled.positions is None else tuple(bound[name] for name in compiled.positions)
        )
        return compiled, arguments

    def run(self, conn: Connection, **params: Any) -> list[Any]:
        return self.run_dbapi(conn.connection, conn.dialect, **params)

    def run_dbapi(self, connection: Any, dialect: Dialect, **params: Any) -> list[Any]:
        """The same on the driver's own connection (compiled for `dialect`, the driver's)."""
        compiled, arguments = self._prepare(dialect, params)
        cursor = connection.cursor()
        try:
            cursor.execute(compiled.sql, arguments)
            raw_rows = cursor.fetchall()
        finally:
            cursor.close()
        return self._rows(compiled, raw_rows)

    async def run_async(self, conn: Any, dialect: Dialect, **params: Any) -> list[Any]:
        """The same on one of asyncpg's connections (compiled for `dialect`, SQLAlchemy's asyncpg
        dialect); asyncpg prepares the statement once per connection."""
        compiled, arguments = self._prepare(dialect, params)
        return self._rows(compiled, await conn.fetch(compiled.sql, *arguments))

    async def run_many_async(
        self, conn: Any, dialect: Dialect, asks: Sequence[Mapping[str, Any]]
    ) -> list[list[Any]]:
        """The statement's rows for each set of parameters in `asks` (in the statement's order, if it
        has one), read by one statement on one of asyncpg's connections. Each set names the
        statement's required parameters, and only those."""
        compiled = self._prepare(dialect, dict(asks[0]))[0]
        batched = self._batched or self._batch(dialect, compiled)
        if any(ask.keys() != batched.required for ask in asks):
            raise ValueError(f"each set of parameters names exactly {sorted(batched.required)}")
        prepared = [self._prepare(dialect, dict(ask)) for ask in asks]
        arguments = [
            [arguments[i] for _, arguments in prepared] if varying else prepared[0][1][i]
            for i, varying in enumerate(batched.varying)
        ]
        found: list[list[Any]] = [[] for _ in asks]
        end = -1 if batched.ordered else None
        for record in await conn.fetch(batched.sql, *arguments):
            found[record[0] - 1].append(self._row_of(compiled, list(record)[1:end]))
        return found

    def _batch(self, dialect: Dialect, compiled: _Compiled) -> _Batched:
        """`SELECT ask.n, q.* FROM unnest($1::T[], ...) WITH ORDINALITY AS ask(p1, ..., n)
        CROSS JOIN LATERAL (the statement, each required $i::T now ask.pi) AS q`; the parameters
        the statement gives values to itself (a LIMIT) stay as they are. A statement with an ORDER
        BY numbers its rows in that order instead (`row_number()`), and the batch is sorted by it:
        an order a lateral join would not otherwise promise to keep."""
        if compiled.positions is None or dialect.driver != "asyncpg":
            raise ValueError("a batched read runs on asyncpg only")
        order = tuple(self.statement._order_by_clauses)
        numbered = self.statement
        if order:
            place = func.row_number().over(order_by=order).label("batch_place")
            numbered = self.statement.order_by(None).add_columns(place)
        statement = numbered.compile(dialect=dialect)
        if tuple(statement.positiontup or ()) != compiled.positions:
            raise ValueError("the batched statement does not take the statement's parameters")
        sql, arrays, varying, required = statement.string, [], [], set()
        for i, name in enumerate(compiled.positions, start=1):
            bind = statement.binds[name]
            varying.append(bind.required)
            if not bind.required:
                continue
            cast = statement.render_bind_cast(bind.type, bind.type.dialect_impl(dialect), "")
            sql, found = re.subn(re.escape(f"${i}{cast}") + r"(?![\w\[(])", f"ask.p{i}", sql)
            if not found:
                raise ValueError(f"parameter ${i} ({name}) is not written as ${i}{cast}")
            arrays.append((f"${i}{cast}[]", f"p{i}"))
            required.add(name)
        if re.search(r"\$\d+(?!\d|::)", sql) or not arrays:
            raise ValueError("a batched read needs every parameter cast and at least one required")
        unnest = ", ".join(array for array, _ in arrays)
        names = ", ".join(name for _, name in arrays)
        batched = _Batched(
            f"SELECT ask.n, q.* FROM unnest({unnest}) WITH ORDINALITY AS ask({names}, n) "
            f"CROSS JOIN LATERAL ({sql}) AS q" + (" ORDER BY ask.n, q.batch_place" if order else ""),
            tuple(varying),
            frozenset(required),
            bool(order),
        )
        self._batched = batched
        return batched

    def _rows(self, compiled: _Compiled, raw_rows: Any) -> list[Any]:
        return [self._row_of(compiled, list(raw)) for raw in raw_rows]

    def _row_of(self, compiled: _Compiled, values: list[Any]) -> Any:
        key: tuple[Any, ...] | None = None
        if self.memo:
            key = tuple(values)
            try:
                row = compiled.remembered.get(key)
            except TypeError:  # a value that cannot be hashed (a decoded JSON column)
                key, row = None, None
            if row is not None:
                return row
        for i, convert in compiled.processors:
            values[i] = convert(values[i])
        row = self._row(*values)
        if key is not None and all(type(value) in _IMMUTABLE for value in values):
            remembered = compiled.remembered
            if len(remembered) >= self.memo:
                remembered.clear()  # rare, and safe from any thread (a full scan of the oldest is not)
            remembered[key] = row
        return row

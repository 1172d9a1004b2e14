"""A klip's `query` (SPEC §13) over its data source's snapshot rows.

`columns_of` infers the columns' types, `check` refuses a query or a mapping that names a column
the source lacks or uses one with the wrong type (before anything is saved), and `run` filters,
computes, groups, aggregates, sorts and limits. `QueryCache` keeps answers per version of the
source's rows, so a dashboard drawn twice does no work the second time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tenantry.klips.spec import Condition, KlipBody, Query

ColumnType = Literal["number", "text", "date", "bool", "empty"]
Rows = list[dict[str, Any]]


class QueryError(ValueError):
    """A query or mapping that does not fit its source: `field` is the dotted path of what is wrong
    (`query.aggregate[0].column`), `message` a sentence naming the column or position."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Table:
    """A query's answer: its columns in order, and rows of JSON values (dates as ISO text)."""

    columns: list[str]
    rows: list[dict[str, Any]]


def columns_of(rows: Rows) -> dict[str, ColumnType]:
    """Each column's type, inferred from its non-null values."""
    raise NotImplementedError


def check(body: KlipBody, columns: dict[str, ColumnType]) -> dict[str, ColumnType]:
    """The columns (and types) of the query's output, or QueryError naming the field at fault."""
    raise NotImplementedError


def run(rows: Rows, query: Query | None, *, where: Sequence[Condition] = (), version: str = "") -> Table:
    """The query's answer over `rows`, after the dashboard's `where` conditions."""
    raise NotImplementedError


@dataclass
class QueryCache:
    """Answers kept per (source version, query, where), least recently used dropped first."""

    capacity: int = 256
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(
        self,
        rows_loader: Callable[[], Rows],
        version: str,
        query: Query | None,
        where: Sequence[Condition] = (),
    ) -> Table:
        raise NotImplementedError

"""A klip's `query` (SPEC §13) over its data source's snapshot rows.

`columns_of` infers the columns' types, `check` refuses a query or a mapping that names a column
the source lacks or uses one with the wrong type (before anything is saved), and `run` filters,
computes, groups, aggregates, sorts and limits. `QueryCache` keeps answers per version of the
source's rows, so a dashboard drawn twice does no work the second time.

The engine is polars, chosen by measurement (`bench/klips.py --engines`): turning 100,000 rows
of dicts into its table takes 60-120 ms here, against 590-720 ms for DuckDB, which without
pyarrow or pandas reads Python rows fastest back from a JSON file; polars' grouped aggregations
over the loaded table were about twice as fast as DuckDB's too (11 ms against 21 ms for a monthly
sum, distinct count and median by region).

Dates arrive as ISO text. A date column keeps its text (answers show it as it came) beside a
hidden parsed column holding the day, so filters and buckets compare days: a datetime column
filtered on a range of days includes the whole last day. A datetime with an offset (`Z`,
`+02:00`) falls on its day in the viewer's timezone (SPEC §13: the client's, the partner's unless
set); a date, or a datetime without an offset, is a local day already.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from itertools import chain
from operator import itemgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from tenantry.klips import expr as expressions
from tenantry.klips.spec import Bucketed, Condition, KlipBody, Query, finite_number

ColumnType = Literal["number", "text", "date", "bool", "empty"]
Rows = list[dict[str, Any]]

# Hidden columns of the engine's table: the day of each date column (parsed once per version of
# the rows) and each row's place in the snapshot. Their names start with a NUL character, which
# no source's column name has (ingest replaces control characters: `text.scrub_column_name`).
_DAY = "\x00day:"
# A date column holding datetimes with an offset is ordered (sort, min, max) by this key: each
# value's instant in UTC where it has an offset, else its text (`_order_key`); one holding
# datetimes written with a space, by its text with a T instead.
_ORDER = "\x00order:"
_ROW = "\x00row"
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_ISO_PATTERN = _ISO.pattern
_OFFSET_PATTERN = r"(?:Z|[+-]\d{2}:?\d{2})$"
_TRUNCATE = {"week": "1w", "month": "1mo", "quarter": "1q", "year": "1y"}
_DTYPES: dict[str, Any] = {"number": pl.Float64, "date": pl.Date, "text": pl.String, "bool": pl.Boolean}
_NUMERIC_FNS = ("sum", "avg", "median")
_ORDERED_FNS = ("min", "max")


class QueryError(ValueError):
    """A query or mapping that does not fit its source: `field` is the dotted path of what is wrong
    (`query.aggregate[0].column`), `message` a sentence naming the column or position, for whoever
    builds the klip; `shown` the sentence for whoever only views it (a published page, a member's
    portal, an export), which names nothing of the source the klip does not draw."""

    def __init__(self, field: str, message: str, shown: str | None = None) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.shown = message if shown is None else shown


@dataclass(frozen=True)
class Table:
    """A query's answer: its columns in order, and rows of JSON values (dates as ISO text).
    Answers are shared (by the cache, and with the snapshot when rows are answered as they are):
    read them, never change them."""

    columns: list[str]
    rows: list[dict[str, Any]]


# --- Types -------------------------------------------------------------------------------------


def _values(rows: Rows) -> Iterator[tuple[str, list[Any]]]:
    """Each column's name and values, in order of first appearance (rows may lack some)."""
    if not rows:
        return
    first = list(rows[0])
    # Rows of a snapshot nearly always share their columns. When every row has as many as the
    # first, and each of the first's, they all have the same: read them with itemgetter, twice
    # as fast as .get.
    if set(map(len, rows)) == {len(first)}:
        try:
            columns = [(name, list(map(itemgetter(name), rows))) for name in first]
        except KeyError:
            pass
        else:
            yield from columns
            return
    for name in dict.fromkeys(chain.from_iterable(rows)):
        yield name, [row.get(name) for row in rows]


def _classify(values: Sequence[Any]) -> tuple[ColumnType, set[type]]:
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return "empty", kinds
    if kinds <= {int, float}:
        return "number", kinds
    if kinds == {bool}:
        return "bool", kinds
    if kinds == {str} and _days(pl.Series(values, dtype=pl.String)) is not None:
        return "date", kinds
    return "text", kinds


def _days(texts: pl.Series) -> pl.Series | None:
    """The day of each value when every value is an ISO date or datetime, else None."""
    first = texts.drop_nulls().head(1)
    if first.is_empty() or not _ISO.match(first[0]):
        return None  # only a column whose first value looks like a date is read whole as dates
    days = texts.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    if days.null_count() != texts.null_count() or not texts.str.contains(_ISO_PATTERN).all():
        return None
    return days


# A leap second (23:59:60, which RFC 3339 allows) is read as the second before it, by the engine
# and by Python alike: it stays on its own day.
_LEAP_SECOND = r"([T ]\d{2}:\d{2}):60"
# The days Python's dates hold: an instant whose day falls outside them keeps its text's day.
_FIRST_DAY, _LAST_DAY = date.min, date.max


def _instant(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(re.sub(_LEAP_SECOND, r"\1:59", text, count=1)).astimezone(UTC)
    except (ValueError, OverflowError):  # 25:00, or past year 9999: its day is its first ten characters
        return None


def _local_day(instant: datetime, zone: ZoneInfo) -> date | None:
    """The instant's day in `zone`, or None when that day is not one Python's dates hold."""
    try:
        return instant.astimezone(zone).date()
    except OverflowError:
        return None


def _instants(texts: pl.Series) -> pl.Series | None:
    """The instant (UTC) of each datetime of a date column that has an offset, else null; None
    when no value has one."""
    zoned = texts.str.contains(_OFFSET_PATTERN).fill_null(False)
    if not zoned.any():
        return None
    everywhere = bool(zoned.all())
    places = None if everywhere else zoned.arg_true()
    offsets = texts if places is None else texts.gather(places)
    if offsets.str.contains(_LEAP_SECOND).any():
        offsets = offsets.str.replace(_LEAP_SECOND, "${1}:59")
    # The engine reads the usual forms at once: it infers one from the first value it is given,
    # so it is given the values with an offset only (a plain day first would make it read none).
    # Python reads what it leaves, one by one (other forms, and 25:00 and the like, which stay null).
    instant = pl.Datetime("us", "UTC")
    try:
        parsed = offsets.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    except pl.exceptions.PolarsError:
        parsed = pl.Series(texts.name, [None] * len(offsets), dtype=instant)
    left = parsed.is_null() & offsets.is_not_null()
    if left.any():
        values = parsed.to_list()
        for index in left.arg_true():
            values[index] = _instant(offsets[index])
        parsed = pl.Series(texts.name, values, dtype=instant)
    # An instant outside years 1 to 9999 (0001-01-01T00:30+01:00) is no instant Python holds: the
    # value keeps its text's day and order, as a literal naming it does (`_instant`).
    parsed = parsed.zip_with(parsed.dt.year().is_between(1, 9999).fill_null(False), parsed.clear(len(parsed)))
    if places is None:
        return parsed
    return pl.Series(texts.name, [None] * len(texts), dtype=instant).scatter(places, parsed)


# A datetime written with a space between its day and its time.
_SPACED = r"^(\d{4}-\d{2}-\d{2}) "


def _order_key(texts: pl.Series, instants: pl.Series) -> pl.Series:
    """What orders a date column with offsets: `02:10+01:00` comes after `02:30+02:00` (01:10 and
    00:30 UTC, the night clocks go back in Paris), though its text sorts first. The instant is
    written in UTC as the text of a datetime without an offset, so a column's plain days and
    datetimes (its own days, in every timezone) fall between the instants as their text says."""
    written = instants.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f")
    own = texts.str.replace(_SPACED, "${1}T")  # `2026-03-29 05:00` as with a T
    return written.zip_with(written.is_not_null(), own)


def _local_days(instants: pl.Series, days: pl.Series, timezone: str | None) -> pl.Series:
    """`days` with the day of each instant in `timezone` where there is one."""
    zone = timezone or "UTC"
    try:
        local = instants.dt.convert_time_zone(zone).dt.date()
    except pl.exceptions.PolarsError:  # a zone the engine does not know: Python's database does
        tz = ZoneInfo(zone)
        local = pl.Series([None if at is None else _local_day(at, tz) for at in instants], dtype=pl.Date)
    # A day past Python's calendar (9999-12-31T23:00Z in Paris) keeps its text's day, as a literal does.
    kept = local.is_between(_FIRST_DAY, _LAST_DAY).fill_null(False)
    return local.zip_with(kept, days).alias(days.name)


def columns_of(rows: Rows) -> dict[str, ColumnType]:
    """Each column's type, inferred from its non-null values: numbers only → number; ISO dates or
    datetimes only → date; true/false only → bool; none at all → empty; anything else → text."""
    return {name: _column(name, values)[1] for name, values in _values(rows)}


# --- The engine's table ------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A snapshot loaded into the engine: its table (with the hidden day columns) and its types."""

    frame: pl.DataFrame
    types: dict[str, ColumnType]
    rows: Rows
    # Whether the rows hold only JSON values (no NaN nor infinity), so they can be answered as
    # they are.
    clean: bool = True
    # Per date column holding datetimes with an offset, their instants (UTC; null for the
    # column's other values): their days depend on the timezone they are seen in (`in_timezone`).
    instants: Mapping[str, pl.Series] = field(default_factory=dict)
    # The date columns ordered by a key of their own, their instants or their text with a T (the
    # frame holds their `_ORDER` key).
    ordered: frozenset[str] = frozenset()
    # `in_timezone`'s answers, per timezone: worked out once per loaded table.
    _seen_in: dict[str | None, Source] = field(default_factory=dict, compare=False, repr=False)

    def in_timezone(self, timezone: str | None) -> Source:
        """The source with each date column's day as seen in `timezone` (UTC when None)."""
        if not self.instants:
            return self
        seen = self._seen_in.get(timezone)
        if seen is None:
            days = [
                _local_days(instants, self.frame.get_column(_DAY + name), timezone)
                for name, instants in self.instants.items()
            ]
            seen = replace(self, frame=self.frame.with_columns(days), instants={}, _seen_in={})
            self._seen_in[timezone] = seen
        return seen


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return None
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _series(name: str, values: list[Any], kind: ColumnType, kinds: set[type]) -> pl.Series:
    if kind == "number":
        if kinds == {int}:
            try:
                return pl.Series(name, values, dtype=pl.Int64)
            except (OverflowError, TypeError):
                pass  # an integer beyond 64 bits: kept as a float, like JSON readers do
        series = pl.Series(name, values, dtype=pl.Float64, strict=False)
        if series.is_finite().all(ignore_nulls=True):
            return series
        # NaN and infinities are no JSON numbers: they are nulls here as in the answers.
        return series.to_frame().select(pl.when(pl.col(name).is_finite()).then(pl.col(name))).to_series()
    if kind == "bool":
        return pl.Series(name, values, dtype=pl.Boolean)
    if kind == "empty":
        return pl.Series(name, [None] * len(values), dtype=pl.Float64)
    if kind == "date" or kinds == {str}:
        return pl.Series(name, values, dtype=pl.String)
    return pl.Series(name, [_text(v) for v in values], dtype=pl.String)


def _column(name: str, values: list[Any]) -> tuple[pl.Series, ColumnType, set[type], pl.Series | None]:
    """A column as the engine's series, its type, the Python types of its values and, for a
    date column, the day of each value."""
    first = next((value for value in values if value is not None), None)
    if type(first) is str:
        # Most columns hold text only: a strict build proves it at once, without a pass over
        # the values' types (it refuses anything but text and null).
        try:
            series = pl.Series(name, values, dtype=pl.String, strict=True)
        except (TypeError, OverflowError, pl.exceptions.PolarsError):
            pass
        else:
            days = _days(series)
            return series, "text" if days is None else "date", {str}, days
    kind, kinds = _classify(values)
    series = _series(name, values, kind, kinds)
    return series, kind, kinds, _days(series) if kind == "date" else None


def load(rows: Rows) -> Source:
    """The rows as the engine's table: one typed column each, plus a parsed day per date column."""
    columns: list[pl.Series] = []
    types: dict[str, ColumnType] = {}
    instants: dict[str, pl.Series] = {}
    spaced: set[str] = set()
    clean = True
    for name, values in _values(rows):
        series, kind, kinds, days = _column(name, values)
        types[name] = kind
        if float in kinds and clean:
            if kind == "number":  # the series' non-finite values became nulls
                clean = series.null_count() == values.count(None)
            else:
                clean = all(math.isfinite(v) for v in values if type(v) is float)
        columns.append(series)
        if days is not None:
            columns.append(days.alias(_DAY + name))
            zoned = _instants(series)
            if zoned is not None:
                instants[name] = zoned
                columns.append(_order_key(series, zoned).alias(_ORDER + name))
            elif series.dtype == pl.String and series.str.contains(_SPACED).any():
                # Datetimes written with a space and with a T: ordered as if all had a T.
                spaced.add(name)
                columns.append(series.str.replace(_SPACED, "${1}T").alias(_ORDER + name))
    # Rows that all lack columns (`[{}]`) make a frame of no columns: given as none, it keeps
    # the rows' count (a count of rows answers it), where given as an empty list it refuses one.
    frame = pl.DataFrame(columns or None, height=len(rows))
    return Source(frame, types, rows, clean, instants, frozenset(instants) | spaced)


# --- Checking ----------------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_day(value: Any, timezone: str | None = None) -> date | None:
    """The day a literal names: its first ten characters, or for a datetime with an offset its
    day in `timezone` (UTC when None), as for the column's own values (`Source.in_timezone`)."""
    if isinstance(value, str) and _ISO.match(value):
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return None
        if re.search(_OFFSET_PATTERN, value):
            instant = _instant(value)
            local = None if instant is None else _local_day(instant, ZoneInfo(timezone or "UTC"))
            if local is not None:
                return local
        return day
    return None


_WHOLE = re.compile(r"-?\d{1,18}")
_DAY_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")


def whole_number(text: str) -> int | None:
    """The whole number `text` spells (up to 18 digits, spaces around it allowed), exactly, or
    None: a value from a page's address compared with a column of whole numbers (an id past 2**53
    is not its neighbour, as a float would make it)."""
    return int(text) if _WHOLE.fullmatch(text.strip()) else None


def _is_int64(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def _literal(kind: ColumnType, value: Any, *, lenient: bool, timezone: str | None = None) -> Any:
    """The value a condition compares a column of this type with, or ValueError saying why it
    cannot. `lenient` (dashboard filters, whose values come from a URL as text) reads "12" as a
    number and "true" as true; a date's day is seen in `timezone`."""
    if kind == "number":
        if _is_number(value):
            # The engine compares floats: a number none holds (`klips.spec` refuses it) cannot be one.
            if finite_number(value):
                return value
            raise ValueError("the value is not a finite number a float holds")
        if lenient and isinstance(value, str):
            whole = whole_number(value)
            if whole is not None:
                return whole
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if math.isfinite(number):
                    return number
        raise ValueError(f"{value!r} is not a number")
    if kind == "date":
        day = _as_day(value, timezone)
        if day is None:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)")
        return day
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if lenient and value in ("true", "false"):
            return value == "true"
        raise ValueError(f"{value!r} is not true or false")
    if kind == "text":
        if isinstance(value, str):
            return value
        if lenient:
            return _text(value)
        raise ValueError(f"{value!r} is not text")
    return value  # an empty column: nothing matches anyway


def _check_condition(condition: Condition, kind: ColumnType, path: str, *, lenient: bool) -> None:
    op, column = condition.op, condition.column
    if op in ("is_null", "not_null") or kind == "empty":
        return
    if op == "contains" and kind != "text":
        raise QueryError(f"{path}.op", f"contains needs a text column, and {column!r} holds {kind}s")
    if op in ("lt", "le", "gt", "ge", "between") and kind == "bool":
        raise QueryError(f"{path}.op", f"{op} cannot compare {column!r}, which holds true or false")
    values = condition.value if isinstance(condition.value, list) else [condition.value]
    # `between` given as the text "a..b" arrives as two texts: read them as the column's type.
    lenient = lenient or op == "between"
    for value in values:
        try:
            _literal(kind, value, lenient=lenient)
        except ValueError as error:
            raise QueryError(
                f"{path}.value", f"{error}, and {column!r} holds {kind}s: compare it with a {kind}"
            ) from None


def _need(columns: Mapping[str, ColumnType], column: str, path: str, where: str) -> ColumnType:
    if column not in columns:
        names = sorted(columns)
        known = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        missing = f"there is no column {column!r} {where}"
        raise QueryError(path, f"{missing} (columns: {known or 'none'})", shown=missing)
    return columns[column]


@dataclass(frozen=True)
class _Plan:
    computed: list[tuple[str, expressions.Expr]]
    rows_types: dict[str, ColumnType]  # after compute
    output: dict[str, ColumnType]  # after grouping


def _plan(query: Query | None, source: Mapping[str, ColumnType]) -> _Plan:
    """The query checked against the source's columns, with its parsed expressions."""
    types = dict(source)
    if query is None:
        return _Plan([], types, dict(types))
    for i, condition in enumerate(query.filter):
        path = f"query.filter[{i}]"
        kind = _need(types, condition.column, f"{path}.column", "in the source (filters run before compute)")
        _check_condition(condition, kind, path, lenient=False)
    computed = []
    for i, compute in enumerate(query.compute):
        path = f"query.compute[{i}].expr"
        try:
            parsed = expressions.parse(compute.expr)
        except expressions.ExprError as error:
            raise QueryError(path, f"at position {error.position}: {error.message}") from None
        for name in parsed.columns():
            kind = _need(types, name, path, "in the source or computed before it")
            if kind not in ("number", "empty"):
                raise QueryError(path, f"{name!r} holds {kind}s, and arithmetic needs numbers")
        computed.append((compute.as_, parsed))
        types[compute.as_] = "number"
    if not (query.group_by or query.aggregate):
        output = dict(types)
    else:
        output = {}
        for i, key in enumerate(query.group_by):
            path = f"query.group_by[{i}]"
            column = key.column if isinstance(key, Bucketed) else key
            if column in output:
                raise QueryError(path, f"{column!r} is grouped by twice")
            if isinstance(key, Bucketed):
                kind = _need(types, key.column, f"{path}.column", "to group by")
                if kind not in ("date", "empty"):
                    raise QueryError(
                        f"{path}.bucket",
                        f"a {key.bucket} bucket needs a date column, and {key.column!r} holds {kind}s",
                    )
                output[key.column] = "date"
            else:
                output[key] = _need(types, key, path, "to group by")
        for i, aggregate in enumerate(query.aggregate):
            path = f"query.aggregate[{i}]"
            if aggregate.as_ in output:
                raise QueryError(
                    f"{path}.as", f"the output already has a column {aggregate.as_!r}: choose another name"
                )
            if aggregate.column is None:
                output[aggregate.as_] = "number"
                continue
            kind = _need(types, aggregate.column, f"{path}.column", "to aggregate")
            if aggregate.fn in _NUMERIC_FNS and kind not in ("number", "empty"):
                raise QueryError(
                    f"{path}.column", f"{aggregate.fn} needs numbers, and {aggregate.column!r} holds {kind}s"
                )
            if aggregate.fn in _ORDERED_FNS and kind not in ("number", "date", "empty"):
                raise QueryError(
                    f"{path}.column",
                    f"{aggregate.fn} needs numbers or dates, and {aggregate.column!r} holds {kind}s",
                )
            output[aggregate.as_] = kind if aggregate.fn in _ORDERED_FNS else "number"
    for i, sort in enumerate(query.sort):
        _need(output, sort.column, f"query.sort[{i}].column", "in the query's output")
    return _Plan(computed, types, output)


def check(body: KlipBody, columns: dict[str, ColumnType]) -> dict[str, ColumnType]:
    """The columns (and types) of the query's output, or QueryError naming the field at fault:
    a column the source lacks, a function meeting a column of the wrong type, or a klip mapping
    (`columns.*`, `series[].column`) naming a column the query's output lacks.

    A source without rows yet (never refreshed, or empty), or whose rows are all empty objects,
    has no columns to check against: every column named (filtered, computed from, grouped by,
    aggregated, sorted on or mapped) is then taken as empty, as `execute` takes those the query
    reads, so only what can be wrong whatever the rows (an expression, a name given twice, a
    mapping the grouped output lacks) is refused."""
    mapped = _mapped(body)
    if not columns:
        named = _named(body.query) if body.query else []
        columns = dict.fromkeys([*named, *(column for _, column in mapped)], "empty")
    output = _plan(body.query, columns).output
    where = (
        "in the query's output"
        if body.query and (body.query.group_by or body.query.aggregate)
        else "in the source"
    )
    for path, column in mapped:
        _need(output, column, path, where)
    return output


def _mapped(body: KlipBody) -> list[tuple[str, str]]:
    """The columns a klip's mapping names, each with its field's path."""
    mapping = body.columns
    mapped = [(f"columns.{name}", getattr(mapping, name)) for name in ("x", "y", "label", "value")]
    mapped += [(f"columns.fields[{i}]", column) for i, column in enumerate(mapping.fields or [])]
    mapped += [(f"columns.formats.{column}", column) for column in mapping.formats or {}]
    mapped += [(f"series[{i}].column", series.column) for i, series in enumerate(body.series or [])]
    return [(path, column) for path, column in mapped if column is not None]


# --- Running -----------------------------------------------------------------------------------


def _compared(column: str, kind: ColumnType) -> pl.Expr:
    return pl.col(_DAY + column) if kind == "date" else pl.col(column)


def _condition(
    condition: Condition,
    kind: ColumnType,
    *,
    lenient: bool,
    timezone: str | None = None,
    dtype: pl.DataType | None = None,
) -> pl.Expr:
    """`dtype`: the column's own type in the frame (a column of whole numbers is compared with
    whole values as they are, not as floats)."""
    column, op = condition.column, condition.op
    if op == "is_null":
        return pl.col(column).is_null()
    if op == "not_null":
        return pl.col(column).is_not_null()
    values = condition.value if isinstance(condition.value, list) else [condition.value]
    lenient = lenient or op == "between"
    try:
        literals = [_literal(kind, value, lenient=lenient, timezone=timezone) for value in values]
    except ValueError:
        literals = []
    if (
        kind == "empty"
        or not literals
        or (op == "contains" and kind != "text")
        or (op in ("lt", "le", "gt", "ge", "between") and kind == "bool")
    ):
        # Only a dashboard's filter gets here (a klip's own query was checked): a condition
        # that cannot hold in this column matches no row.
        return pl.lit(False)
    target = _compared(column, kind)
    if kind == "number":
        # One type for the column and its values: polars refuses to mix integers and floats. Whole
        # numbers stay whole where the column and every value are: 2**53 + 1 is not 2**53.
        if dtype is not None and dtype.is_integer() and all(_is_int64(value) for value in literals):
            target = target.cast(pl.Int64)
        else:
            target = target.cast(pl.Float64)
            literals = [float(value) for value in literals]
    if op == "contains":
        needle = str(literals[0]).lower()
        return target.str.to_lowercase().str.contains(needle, literal=True)
    if op == "in":
        whole = kind == "number" and type(literals[0]) is int
        return target.is_in(pl.Series(literals, dtype=pl.Int64 if whole else _DTYPES[kind])).fill_null(False)
    if op == "between":
        low, high = literals
        if kind == "text" and isinstance(high, str) and _DAY_TEXT.fullmatch(high):
            # A range ending on a day holds that whole day, datetimes written after it included,
            # in a column that is text (one stray "n/a" makes it so) as in a date column.
            return (target >= low) & (target.str.slice(0, 10) <= high)
        return (target >= low) & (target <= high)
    comparisons = {
        "eq": target.eq,
        "ne": target.ne,
        "lt": target.lt,
        "le": target.le,
        "gt": target.gt,
        "ge": target.ge,
    }
    return comparisons[op](literals[0])


def _translate(
    node: expressions.Expr, types: Mapping[str, ColumnType], whole: set[str]
) -> tuple[pl.Expr, bool]:
    """The expression in polars, and whether its values are whole numbers (`whole`: the number
    columns that hold whole numbers). Whole numbers are added, subtracted, negated and multiplied
    in 128 bits, and a result past what 64 bits hold is null, as a division by zero is: a gap,
    never a total wrapped round to the other sign."""
    if isinstance(node, expressions.Number):
        if isinstance(node.value, float):
            return pl.lit(node.value, dtype=pl.Float64), False
        return pl.lit(node.value, dtype=pl.Int64), True
    if isinstance(node, expressions.Col):
        if types.get(node.name) != "number":
            return pl.lit(None, dtype=pl.Float64), False
        return pl.col(node.name), node.name in whole
    if isinstance(node, expressions.Neg):
        operand, is_whole = _translate(node.operand, types, whole)
        return (_in_64_bits(_ZERO_128 - operand.cast(pl.Int128)), True) if is_whole else (-operand, False)
    if isinstance(node, expressions.BinOp):
        (left, left_whole), (right, right_whole) = (
            _translate(node.left, types, whole),
            _translate(node.right, types, whole),
        )
        if node.op == "/":
            # Division by zero gives null: one odd row shows a gap, not an error or an infinity.
            return pl.when(right != 0).then(left / right).otherwise(None), False
        if left_whole and right_whole:
            left, right = left.cast(pl.Int128), right.cast(pl.Int128)
        if node.op == "+":
            value = left + right
        elif node.op == "-":
            value = left - right
        else:
            value = left * right
        return (_in_64_bits(value), True) if left_whole and right_whole else (value, False)
    translated = [_translate(arg, types, whole) for arg in node.args]
    args = [arg for arg, _ in translated]
    if node.fn == "coalesce":
        return (pl.coalesce(args) if len(args) > 1 else args[0]), all(is_whole for _, is_whole in translated)
    if node.fn == "abs":
        if translated[0][1]:
            value = args[0].cast(pl.Int128)
            return _in_64_bits(pl.when(value < 0).then(_ZERO_128 - value).otherwise(value)), True
        return args[0].abs(), False
    digits = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], expressions.Number) else 0
    return args[0].cast(pl.Float64).round(int(digits), mode="half_away_from_zero"), False


_ZERO_128 = pl.lit(0, dtype=pl.Int128)


def _in_64_bits(value: pl.Expr) -> pl.Expr:
    """A 128-bit whole number back in 64 bits, or null where it does not fit."""
    return value.cast(pl.Int64, strict=False)


def _key(key: str | Bucketed, types: Mapping[str, ColumnType]) -> pl.Expr:
    if isinstance(key, str):
        return pl.col(key)
    if types.get(key.column) == "empty":
        return pl.col(key.column).cast(pl.String)
    day = pl.col(_DAY + key.column)
    if key.bucket != "day":
        day = day.dt.truncate(_TRUNCATE[key.bucket])
    return day.cast(pl.String).alias(key.column)


def _aggregate(
    fn: str, column: str | None, name: str, ordered: frozenset[str], whole: frozenset[str]
) -> pl.Expr:
    """`ordered`: the columns ordered by their instants; `whole`: the columns of whole numbers."""
    if column is None:
        return pl.len().cast(pl.Int64).alias(name)
    value = pl.col(column)
    if fn == "count":
        return value.count().cast(pl.Int64).alias(name)
    if fn == "count_distinct":
        return value.drop_nulls().n_unique().cast(pl.Int64).alias(name)
    if fn == "sum":
        # Whole numbers add up in 128 bits: ten of 999999999999999999 pass what 64 bits hold.
        return (value.cast(pl.Int128) if column in whole else value).sum().alias(name)
    if fn == "avg":
        return value.mean().alias(name)
    if fn == "median":
        return value.median().alias(name)
    if column in ordered:  # the text of the earliest or latest instant
        key = pl.col(_ORDER + column)
        return value.sort_by(key, descending=fn == "max", nulls_last=True).first().alias(name)
    return (value.min() if fn == "min" else value.max()).alias(name)


def _json_safe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for name, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[name] = None
            elif isinstance(value, date):
                row[name] = value.isoformat()
    return rows


def _where(source: Source, where: Iterable[Condition], timezone: str | None) -> list[pl.Expr]:
    # A dashboard's filter applies to the klips whose source has its column, and only those.
    return [
        _condition(
            condition,
            source.types[condition.column],
            lenient=True,
            timezone=timezone,
            dtype=source.frame.schema.get(condition.column),
        )
        for condition in where
        if condition.column in source.types
    ]


def _named(query: Query) -> list[str]:
    """Every source column a query names."""
    names = [c.column for c in query.filter]
    for compute in query.compute:
        with suppress(expressions.ExprError):  # reported by _plan
            names += expressions.parse(compute.expr).columns()
    names += [key.column if isinstance(key, Bucketed) else key for key in query.group_by]
    names += [a.column for a in query.aggregate if a.column is not None]
    # A sort names a source column when nothing is grouped (a column of the output otherwise,
    # which the source may lack: taken as empty there too, it changes nothing).
    names += [s.column for s in query.sort]
    return names


def _without_columns(query: Query, rows: Rows) -> Source:
    """The rows of a snapshot that has no columns to read (no rows yet, or rows that are all
    empty objects), with every column the query names taken as empty, as `check` takes them: the
    klip shows no data (or a count of its rows) rather than an error. The klip's mapped columns
    are not needed: every column the query reads is here, so a query `check` let through runs,
    and its answer holds no value for a mapping to draw."""
    names = dict.fromkeys(_named(query))
    frame = pl.DataFrame(
        [pl.Series(name, [None] * len(rows), dtype=pl.Float64) for name in names] or None, height=len(rows)
    )
    return Source(frame, dict.fromkeys(names, "empty"), rows)


def execute(
    source: Source, query: Query | None, where: Sequence[Condition] = (), timezone: str | None = None
) -> Table:
    """The query's answer over a loaded source (see `run`), its days seen in `timezone`."""
    source = source.in_timezone(timezone)
    if not source.types and query is not None:
        source = _without_columns(query, source.rows)
    plan = _plan(query, source.types)
    conditions = _where(source, where, timezone)
    if query is not None:
        conditions += [
            _condition(
                c,
                source.types[c.column],
                lenient=False,
                timezone=timezone,
                dtype=source.frame.schema.get(c.column),
            )
            for c in query.filter
        ]
    if query is None or not (query.compute or query.group_by or query.aggregate or query.sort or query.limit):
        # Rows as they are: the matching rows of the snapshot itself, values untouched.
        if not conditions:
            rows = list(source.rows)
        else:
            index = source.frame.select(pl.arg_where(pl.all_horizontal(conditions))).to_series()
            rows = [source.rows[i] for i in index]
        return Table(list(source.types), rows if source.clean else _json_safe([dict(row) for row in rows]))
    frame = source.frame.lazy()
    grouped = bool(query.group_by or query.aggregate)
    if not grouped:
        frame = frame.with_row_index(_ROW)
    if conditions:
        frame = frame.filter(pl.all_horizontal(conditions))
    ordered = set(source.ordered)
    whole_columns = {name for name, dtype in source.frame.schema.items() if dtype.is_integer()}
    for name, parsed in plan.computed:
        value, is_whole = _translate(parsed, plan.rows_types, whole_columns)
        frame = frame.with_columns(value.alias(name))
        if is_whole:
            whole_columns.add(name)
        else:
            whole_columns.discard(name)
        if source.types.get(name) == "date":
            frame = frame.drop(_DAY + name)
        if name in ordered:
            frame = frame.drop(_ORDER + name)
            ordered.discard(name)
    if not grouped:
        return _rows_of(source, plan, query, frame, frozenset(ordered))
    whole = frozenset(name for name, dtype in frame.collect_schema().items() if dtype.is_integer())
    aggregates = [_aggregate(a.fn, a.column, a.as_, frozenset(ordered), whole) for a in query.aggregate]
    # The output's columns ordered by instants keep their hidden key: a min or max over such a
    # column (the key of the value it took), and a group_by key that is one.
    extremes = [a for a in query.aggregate if a.fn in ("min", "max") and a.column in ordered]
    aggregates += [getattr(pl.col(_ORDER + str(a.column)), a.fn)().alias(_ORDER + a.as_) for a in extremes]
    plain = [key for key in query.group_by if isinstance(key, str) and key in ordered]
    output_ordered = frozenset([*(a.as_ for a in extremes), *plain])
    if query.group_by:
        keys = [_key(key, plan.rows_types) for key in query.group_by]
        if aggregates or plain:
            firsts = [pl.col(_ORDER + key).first() for key in plain]
            frame = frame.group_by(keys).agg([*aggregates, *firsts])
        else:
            frame = frame.select(keys).unique()
        # Groups come out in the order of their keys unless the query sorts them; groups the
        # query's sort ties stay in that order, so a limit keeps the first rows of the same answer.
        names = list(plan.output)[: len(keys)]
        by_keys = [_ORDER + n if n in output_ordered else n for n in names]
        frame = frame.sort(by_keys, nulls_last=True) if not query.sort else frame
    else:
        by_keys = []
        frame = frame.select(aggregates)
    result = _sorted(frame, query, output_ordered, by_keys).collect()
    return Table(list(plan.output), _json_safe(result.select(list(plan.output)).to_dicts()))


def _sorted(
    frame: pl.LazyFrame, query: Query, ordered: frozenset[str] = frozenset(), ties: Sequence[str] = ()
) -> pl.LazyFrame:
    """`ordered`: the columns ordered by their instants (`_ORDER`), where the frame still has them;
    `ties`: the columns that order rows the query's sort ties (ascending), after it."""
    if query.sort:
        frame = frame.sort(
            [*(_ORDER + s.column if s.column in ordered else s.column for s in query.sort), *ties],
            descending=[*(s.desc for s in query.sort), *(False for _ in ties)],
            nulls_last=True,
            maintain_order=True,
        )
    return frame.head(query.limit) if query.limit is not None else frame


def _rows_of(
    source: Source, plan: _Plan, query: Query, frame: pl.LazyFrame, ordered: frozenset[str]
) -> Table:
    """Ungrouped answers: the snapshot's own rows (values untouched), with the computed columns."""
    computed = list(dict.fromkeys(name for name, _ in plan.computed))
    result = _sorted(frame, query, ordered).select([_ROW, *computed]).collect()
    rows = [source.rows[i] for i in result.get_column(_ROW)]
    if computed:
        values = _json_safe(result.select(computed).to_dicts())
        rows = [{**row, **extra} for row, extra in zip(rows, values, strict=True)]
    elif not source.clean:
        rows = [dict(row) for row in rows]
    return Table(list(plan.output), rows if source.clean else _json_safe(rows))


def run(
    rows: Rows, query: Query | None, *, where: Sequence[Condition] = (), timezone: str | None = None
) -> Table:
    """The query's answer over `rows`: the dashboard's `where` conditions and the query's filter,
    then compute, group_by with aggregate, sort and limit. Without a query, the rows as they are
    (only `where` applied). Datetimes with an offset fall on their day in `timezone` (UTC when
    None). QueryError when the query does not fit the rows. (A `QueryCache` keeps loaded tables
    and answers per version of the rows; this loads them each time.)"""
    return execute(load(rows), query, where, timezone)


# --- Caching -----------------------------------------------------------------------------------


class _Lru:
    """A thread-safe LRU whose misses are computed once even when threads ask together."""

    def __init__(self, capacity: int, weigh: Callable[[Any], int] = lambda _: 1, budget: int | None = None):
        self.capacity = capacity
        self.weigh = weigh
        self.budget = budget
        self.weight = 0
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()
        self.pending: dict[Any, threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                self.hits += 1
                return self.items[key]
            pending = self.pending.setdefault(key, threading.Lock())
        with pending:
            with self.lock:
                if key in self.items:  # computed by the thread we waited for
                    self.items.move_to_end(key)
                    self.hits += 1
                    return self.items[key]
            try:
                value = compute()
            except BaseException:
                with self.lock:
                    self.pending.pop(key, None)
                raise
            with self.lock:
                # Stored and no longer pending in one step: a thread arriving now finds it.
                self.pending.pop(key, None)
                self.misses += 1
                self.items[key] = value
                self.weight += self.weigh(value)
                while len(self.items) > self.capacity or (
                    self.budget is not None and self.weight > self.budget and len(self.items) > 1
                ):
                    _, dropped = self.items.popitem(last=False)
                    self.weight -= self.weigh(dropped)
            return value


class _Sources:
    """Loaded tables per version of a source's rows: two klips over one source load it once.
    At most `capacity` of them, holding `max_rows` rows in all (each keeps its snapshot's rows,
    to answer them as they are)."""

    def __init__(self, capacity: int, max_rows: int) -> None:
        self.lru = _Lru(capacity, weigh=lambda source: len(source.rows) + 1, budget=max_rows)

    def get(self, version: str, rows_loader: Callable[[], Rows]) -> Source:
        source: Source = self.lru.get(version, lambda: load(rows_loader()))
        return source


def _where_key(where: Sequence[Condition]) -> str:
    return json.dumps([c.model_dump(mode="json") for c in where], sort_keys=True)


class QueryCache:
    """Answers kept per (source version, query, where), least recently used dropped first, and
    the loaded table per source version. At most `capacity` answers holding `max_rows` rows in
    all, and `sources` loaded tables holding `max_source_rows` rows in all (the newest is kept
    whatever its size). Safe to share between threads."""

    def __init__(
        self,
        capacity: int = 256,
        *,
        max_rows: int = 1_000_000,
        sources: int = 16,
        max_source_rows: int = 2_000_000,
    ) -> None:
        self.answers = _Lru(capacity, weigh=lambda table: len(table.rows) + 1, budget=max_rows)
        self.sources = _Sources(sources, max_source_rows)

    def run(
        self,
        rows_loader: Callable[[], Rows],
        version: str,
        query: Query | None,
        where: Sequence[Condition] = (),
        timezone: str | None = None,
    ) -> Table:
        """The query's answer over the source's rows at `version` (loaded by `rows_loader` only
        when this version is not loaded yet), its days seen in `timezone`."""
        if not version:  # no snapshot yet: nothing names these rows, so nothing is kept
            return execute(load(rows_loader()), query, where, timezone)
        key = (version, query.model_dump_json(by_alias=True) if query else "", _where_key(where), timezone)
        table: Table = self.answers.get(
            key, lambda: execute(self.sources.get(version, rows_loader), query, where, timezone)
        )
        return table

    def columns(self, rows_loader: Callable[[], Rows], version: str) -> dict[str, ColumnType]:
        """The source's column types at `version`, as `columns_of` infers them, read from its
        loaded table (inferring them again would scan every row for each klip)."""
        if not version:
            return columns_of(rows_loader())
        return dict(self.sources.get(version, rows_loader).types)

    @property
    def hits(self) -> int:
        return self.answers.hits

    @property
    def misses(self) -> int:
        return self.answers.misses

"""The live view of a dashboard: its klips drawn as SVG on its grid, and a data version to poll.

The published page and the client portal's live view use it. A page polls the version; when a
data source refreshes (or the dashboard changes, or the viewer picks other filter values) the
version changes and the page swaps in the new fragment. The same cached SVGs feed the PDF and
PNG exports.

Each klip's query runs over its source's rows with the dashboard's filters that apply to it (a
filter applies to every klip whose source has its column). A klip whose query or mapping no
longer fits its source is drawn as a "needs attention" card; the rest of the dashboard renders.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from pydantic import ValidationError
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from tenantry.charts import grid, markdown, svg
from tenantry.charts.cache import SvgCache
from tenantry.dashboards import repository as repo
from tenantry.dashboards.repository import PlacedKlip
from tenantry.db.models import Client, Dashboard
from tenantry.errors import InvalidInput
from tenantry.klips import dates, query
from tenantry.klips.query import ColumnType, QueryCache, QueryError
from tenantry.klips.spec import DATE_PRESETS, Condition, DashboardFilter, KlipBody
from tenantry.lifecycle import trial_of
from tenantry.owners import content_status
from tenantry.policy import Capability, Decision, decide
from tenantry.text import refusal

log = structlog.get_logger(__name__)

# How often a live page (published or in the portal) asks whether its data changed.
POLL_SECONDS = 15


class PageCache:
    """The published page per dashboard version (which covers its name and klips), rendered once
    and kept as the bytes around its nonce slots: a view joins them with its own nonce, which
    costs next to nothing, where searching the page for the slot would cost more than the rest."""

    def __init__(self, capacity: int, budget: int = 64 * 1024 * 1024) -> None:
        # At most `capacity` pages of `budget` bytes in all (the newest is kept whatever its size).
        self.capacity, self.budget, self.weight = capacity, budget, 0
        # Stands for the response's nonce in a cached page: random per cache, so no content can hold it.
        self.slot = secrets.token_hex(16)
        self._entries: OrderedDict[str, tuple[bytes, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, version: str, nonce: str) -> bytes | None:
        """The page of this version joined with `nonce`, if it was rendered already."""
        with self._lock:
            parts = self._entries.get(version)
            if parts is None:
                return None
            self._entries.move_to_end(version)
        return nonce.encode().join(parts)

    def page(self, version: str, nonce: str, render: Callable[[], str]) -> bytes:
        with self._lock:
            parts = self._entries.get(version)
            if parts is not None:
                self._entries.move_to_end(version)
        if parts is None:
            # Rendered outside the lock: two threads may render one version once each, never wrongly.
            parts = tuple(part.encode() for part in render().split(self.slot))
            with self._lock:
                old = self._entries.pop(version, None)
                self.weight += sum(map(len, parts)) - (sum(map(len, old)) if old is not None else 0)
                self._entries[version] = parts
                while len(self._entries) > 1 and (
                    len(self._entries) > self.capacity or self.weight > self.budget
                ):
                    _, dropped = self._entries.popitem(last=False)
                    self.weight -= sum(map(len, dropped))
        return nonce.encode().join(parts)


@dataclass
class LiveCache:
    """An app's drawings (held by its `Services`): each klip's SVG per version of its data and
    filter values, each dashboard's HTML fragment per data version (a version covers everything
    drawn on the dashboard, filter values included, so a fragment never goes stale), each
    published page per version, and the klips' query answers per source version."""

    klips: SvgCache = field(default_factory=SvgCache)
    fragments: SvgCache = field(default_factory=lambda: SvgCache(capacity=1024, budget=32 * 1024 * 1024))
    pages: PageCache = field(default_factory=lambda: PageCache(capacity=1024))
    queries: QueryCache = field(default_factory=lambda: QueryCache(capacity=1024))
    # Select filters' choices per (their columns, the sources' versions): see `filter_choices`.
    choices: SvgCache = field(default_factory=lambda: SvgCache(capacity=1024, budget=16 * 1024 * 1024))


# A klip as laid out: its drawing, or for a text klip in the live page its HTML.
Drawing = grid.Cell

# The prefix of a filter's value in a page's address: `?f.period=last_30_days`.
FILTER_PREFIX = "f."


def parse_filters(params: Mapping[str, str] | Sequence[tuple[str, str]]) -> dict[str, str]:
    """The `f.<id>` values among a request's query parameters: the last non-blank one of each (a
    page's filter bar sends a date range's preset, then its custom range, which wins if given),
    or "" when all of an id's are blank: "Any time" or "All" chosen over the filter's default.
    A value is kept as sent, spaces included: a select offers its column's values as they are."""
    items = params.items() if isinstance(params, Mapping) else params
    chosen: dict[str, str] = {}
    for name, value in items:
        if name.startswith(FILTER_PREFIX) and len(name) > len(FILTER_PREFIX):
            if value.strip():
                chosen[name[len(FILTER_PREFIX) :]] = value
            else:
                chosen.setdefault(name[len(FILTER_PREFIX) :], "")
    return chosen


def today_in(timezone: str | None, now: datetime) -> date:
    """The calendar day it is in a timezone (UTC when unknown): what `last_7_days` counts from."""
    try:
        zone = ZoneInfo(timezone or "UTC")
    except (ValueError, LookupError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date()


@dataclass(frozen=True)
class Chosen:
    """The dashboard filters in force for one view: each one's filter and value, and, for a date
    range, the days it means (resolved against today, so `last_7_days` moves with the date)."""

    values: tuple[tuple[DashboardFilter, str, tuple[date, date] | None], ...] = ()
    # The timezone the view's days are in: a datetime with an offset falls on its day there.
    timezone: str = "UTC"
    # The filters with a default the viewer chose to clear ("Any time", "All": `f.<id>=`).
    cleared: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """What the chosen values mean, for cache keys and the data version."""
        return "|".join(
            [
                *(
                    f"{f.id}={f.column}:{value!r}:{days[0]}..{days[1]}"
                    if days
                    else f"{f.id}={f.column}:{value!r}"
                    for f, value, days in self.values
                ),
                *([] if self.timezone == "UTC" else [f"tz={self.timezone}"]),
            ]
        )

    @property
    def raw(self) -> dict[str, str]:
        """The values as a page's address gives them (`f.<id>`), to choose them again."""
        return {**dict.fromkeys(self.cleared, ""), **{f.id: value for f, value, _days in self.values}}

    def value_of(self, filter_id: str) -> str | None:
        return next((value for f, value, _days in self.values if f.id == filter_id), None)

    def where(self, columns: Mapping[str, ColumnType], *, previous: bool = False) -> list[Condition]:
        """The conditions on a source with these columns (a filter on a column it lacks is left
        out); with `previous`, date ranges move to the same length of time just before."""
        conditions = []
        for chosen, value, days in self.values:
            if chosen.column not in columns:
                continue
            if days is not None:
                span = dates.previous_period(*days) if previous else days
                assert span is not None  # `compares` is false when a range has no previous period
                start, end = span
                conditions.append(Condition(column=chosen.column, op="between", value=[str(start), str(end)]))
            else:
                conditions.append(
                    Condition(column=chosen.column, op="eq", value=_typed(value, columns[chosen.column]))
                )
        return conditions

    def compares(self, columns: Mapping[str, ColumnType]) -> bool:
        """Whether a date range applies to this source, so a previous period exists (and each
        range applied has one: none comes before year 1)."""
        ranges = [days for f, _value, days in self.values if days is not None and f.column in columns]
        return bool(ranges) and all(dates.previous_period(*days) is not None for days in ranges)


def _typed(value: str, kind: ColumnType) -> Any:
    """A select filter's value as its column holds it: a number column compares numbers."""
    if kind == "number":
        whole = query.whole_number(value)
        if whole is not None:
            return whole
        try:
            number = float(value)
        except ValueError:
            return value  # matches no row, as a value the column never holds should
        if not math.isfinite(number):
            return value  # `1e400`, `nan`: no number a condition takes, so it matches no row either
        return int(number) if number.is_integer() else number
    if kind == "bool" and value in ("true", "false"):
        return value == "true"
    return value


def stored_filters(stored: Sequence[Mapping[str, Any]] | None) -> list[DashboardFilter]:
    """A dashboard's filters as stored (checked when they were set)."""
    return [DashboardFilter.model_validate(f) for f in stored or []]


def choose(
    filters: Sequence[DashboardFilter],
    raw: Mapping[str, str] | None,
    today: date,
    timezone: str | None = None,
) -> Chosen:
    """The filters' values for one view: the viewer's (`f.<id>`), else each filter's default;
    unknown ids are ignored; a value that means nothing is 422 naming `f.<id>`. `today` is the
    day it is in `timezone`, the view's (UTC when None)."""
    raw = raw or {}
    values = []
    cleared = []
    for chosen in filters:
        value = raw.get(chosen.id, chosen.default)
        if value is None or value == "":
            if value == "" and chosen.default:
                cleared.append(chosen.id)
            continue
        name = FILTER_PREFIX + chosen.id
        # One line, as a klip's own filter values are (a value a condition refuses is never made).
        if len(value) > 200 or refusal(value) is not None:
            raise _bad_filter(name, "must be one line of at most 200 characters")
        days = None
        if chosen.kind == "date_range":
            value = value.strip()
            try:
                days = dates.resolve(value, today)
            except ValueError as exc:
                raise _bad_filter(name, str(exc)) from None
        values.append((chosen, value, days))
    return Chosen(tuple(values), timezone or "UTC", tuple(cleared))


# A select filter offers at most this many of its column's values.
CHOICES = 100


def filter_choices(
    db: Session | Connection,
    filters: Sequence[DashboardFilter],
    klips: list[PlacedKlip],
    cache: LiveCache | None = None,
) -> dict[str, list[str]]:
    """Each select filter's choices: its column's distinct values in the dashboard's sources that
    have it (the first 100, sorted), as text, the way a page's address carries them. With a
    `cache`, worked out once per version of the sources (their rows are read only then)."""
    selects = [f for f in filters if f.kind == "select"]
    if not selects:
        return {}
    if cache is None:
        return _choices_of(db, selects, klips)
    versions = repo.versions_of(db, (k.datasource_id for k in klips))
    key = (tuple(sorted(versions.items())), tuple((f.id, f.column) for f in selects))
    found = cache.choices.get(key)
    if found is None:
        choices = _choices_of(db, selects, klips)
        cache.choices.put(key, json.dumps(choices))
        return choices
    loaded: dict[str, list[str]] = json.loads(found)
    return loaded


def _choices_of(
    db: Session | Connection, selects: Sequence[DashboardFilter], klips: list[PlacedKlip]
) -> dict[str, list[str]]:
    snapshots = repo.rows_of(db, (k.datasource_id for k in klips))
    choices: dict[str, list[str]] = {}
    for chosen in selects:
        seen: set[str] = set()
        for _version, rows in snapshots.values():
            for row in rows:
                value = row.get(chosen.column)
                if value is not None and value != "":
                    seen.add(str(value).lower() if isinstance(value, bool) else str(value))
        choices[chosen.id] = sorted(seen)[:CHOICES]
    return choices


def filter_bar(
    filters: Sequence[DashboardFilter], chosen: Chosen, choices: Mapping[str, list[str]]
) -> list[dict[str, Any]]:
    """What a dashboard's filter form shows: each filter with its value and its choices (a date
    range's presets, or a select's values), and a custom range typed as `from..to`."""
    bar = []
    for item in filters:
        value = chosen.value_of(item.id) or ""
        if item.kind == "date_range":
            options = [(p, p.replace("_", " ").capitalize()) for p in DATE_PRESETS]
            custom = value if value and value not in DATE_PRESETS else ""
        else:
            known = choices.get(item.id, [])
            options = [(c, c) for c in known]
            if value and value not in known:
                options.insert(0, (value, value))
            custom = ""
        bar.append(
            {
                "id": item.id,
                "label": item.label or item.column,
                "kind": item.kind,
                "value": value,
                "custom": custom,
                "options": options,
            }
        )
    return bar


def _bad_filter(name: str, message: str) -> InvalidInput:
    error = {"loc": ["query", name], "msg": message, "type": "filter_value"}
    return InvalidInput(f"{name}: {message}", field=name, errors=[error])


def _key(klip: PlacedKlip, version: str, chosen: str = "") -> tuple[object, ...]:
    return (
        klip.id,
        klip.kind,
        klip.title,
        klip.definition,
        klip.datasource_id,
        klip.size_w,
        klip.size_h,
        version,
        chosen,
    )


class Board(Protocol):
    """What names a dashboard's drawing: a Dashboard row, or the public page's lighter read."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def filters(self) -> list[dict[str, Any]]: ...


def data_version(
    dashboard: Board, klips: list[PlacedKlip], watermark: bool = False, chosen: Chosen = Chosen()
) -> str:
    """Changes whenever anything drawn on the dashboard would change: its name, its filters and
    their chosen values, any klip's definition, size, position or data version (replaced klips get
    new rows, so new keys), or whether the Setup watermark is on (so an open page drops it when
    its client leaves Setup)."""
    digest = hashlib.sha256(f"{dashboard.id}|{dashboard.name}|{watermark}|{chosen.key}".encode())
    digest.update(repr(dashboard.filters).encode())
    for klip in klips:
        digest.update(repr(_key(klip, klip.version)).encode())
    return digest.hexdigest()[:20]


def watermark_for(client: Client | None, now: datetime) -> bool:
    """Whether a live view of this client's content carries the Setup watermark (the policy
    table's VIEW_LIVE), as its downloads do; the partner's own content never does."""
    status = content_status(client.status, trial_of(client), now) if client is not None else None
    return status is not None and decide(Capability.VIEW_LIVE, status) is Decision.WATERMARK


def _previous_value(table: query.Table, body: KlipBody) -> float | None:
    """A value klip's number in the previous period's answer: its column in the last row."""
    if not table.rows or body.columns.value is None:
        return None
    return svg.number(table.rows[-1].get(body.columns.value))


class _ReadFailed(Exception):
    """A source's rows could not be read: the database's fault, not the klip's, so it goes past
    `draw_one`'s catch-all (the request is answered 503, and no drawing of it is kept)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def cache_once(read: Callable[[], list[dict[str, Any]]]) -> Callable[[], list[dict[str, Any]]]:
    """`read`, run at most once: its rows are kept for the calls after the first."""
    kept: list[list[dict[str, Any]]] = []

    def once() -> list[dict[str, Any]]:
        if not kept:
            try:
                kept.append(read())
            except Exception as exc:
                raise _ReadFailed(exc) from exc
        return kept[0]

    return once


def _rows_now(db: Session | Connection, source_id: int | None) -> list[dict[str, Any]]:
    """A source's rows as they are now. Read after its version: when a refresh landed in between,
    they are the newer rows, kept under the older version, which no later view asks for."""
    if source_id is None:
        return []
    return repo.rows_of(db, [source_id]).get(source_id, ("", []))[1]


def draw_one(
    klip: PlacedKlip,
    rows: Callable[[], list[dict[str, Any]]],
    version: str,
    cache: LiveCache,
    chosen: Chosen,
) -> str:
    """One klip as SVG: its query over its rows with the filters that apply to it, or a "needs
    attention" card when it no longer fits its source. Never raises: one klip's trouble leaves
    the rest of the dashboard drawn."""
    size = klip.size
    try:
        body = klip.body()
    except ValidationError:
        return svg.attention(klip.title, "This klip's definition is no longer valid; edit it.", size)
    try:
        if body.kind == "text":
            return svg.draw(body, klip.title, [], size=size)
        read = cache_once(rows)
        columns = cache.queries.columns(read, version)
        query.check(body, columns)
        table = cache.queries.run(read, version, body.query, chosen.where(columns), chosen.timezone)
        previous = None
        if body.compare == "previous_period" and chosen.compares(columns):
            before = cache.queries.run(
                read, version, body.query, chosen.where(columns, previous=True), chosen.timezone
            )
            previous = _previous_value(before, body)
        return svg.draw(body, klip.title, table.rows, size=size, previous=previous)
    except _ReadFailed as failed:
        raise failed.error from None
    except QueryError as exc:
        # The viewer's sentence: a member or the public learns no column the klip does not draw.
        return svg.attention(klip.title, f"Its data source changed: {exc.shown}", size)
    except Exception:
        # A bug in one klip's query or drawing must not take the page down with it.
        log.exception("klip_draw_failed", klip_id=klip.id)
        return svg.attention(klip.title, "This klip could not be drawn.", size)


def _draw(
    db: Session | Connection,
    cache: LiveCache,
    klips: list[PlacedKlip],
    watermark: bool = False,
    chosen: Chosen = Chosen(),
    *,
    html_text: bool = False,
) -> list[Drawing]:
    """The klips as SVG, drawing only those not cached yet; the watermark, when asked, is laid
    over the cached drawings (they are the same for every status). With `html_text`, a text
    klip is its Markdown as HTML (the live pages) unless watermarked; otherwise it is an SVG too."""
    found = {klip.id: cache.klips.get(_key(klip, klip.version, chosen.key)) for klip in klips}
    missing = [klip for klip in klips if found[klip.id] is None]
    if missing:
        # The versions first: a source's rows are read only when its query cache does not hold
        # them (a new filter value runs the queries again over the table loaded already).
        versions = repo.versions_of(db, (klip.datasource_id for klip in missing))
        for klip in missing:
            version = versions.get(klip.datasource_id, "") if klip.datasource_id else ""
            rows = partial(_rows_now, db, klip.datasource_id)
            drawing = draw_one(klip, rows, version, cache, chosen)
            # Keyed by the version read above, not the page's: a refresh landing in between leaves
            # the newer rows under the older version, which no later view asks for.
            cache.klips.put(_key(klip, version, chosen.key), drawing)
            found[klip.id] = drawing
    mark = svg.watermarked if watermark else str
    cells = []
    for klip in klips:
        html = None
        if html_text and klip.kind == "text" and not watermark:
            html = cache.klips.get_or_draw(("html", *_key(klip, "")), partial(_text_html, klip))
        cells.append(Drawing(klip.id, klip.title, klip.kind, klip.size, mark(found[klip.id] or ""), html))
    return cells


def _text_html(klip: PlacedKlip) -> str:
    try:
        text = klip.body().text or ""
    except ValidationError:
        text = ""
    return markdown.to_html(text)


def draw_klips(
    db: Session,
    dashboard: Dashboard,
    *,
    cache: LiveCache,
    watermark: bool = False,
    filters: Mapping[str, str] | None = None,
    today: date | None = None,
    timezone: str | None = None,
) -> tuple[str, list[Drawing]]:
    """The dashboard's version and its klips as SVG (what the exports typeset), with the filter
    values given as `f.<id>` parameters (422 naming one that means nothing); `today` is the day
    it is in `timezone`, the client's."""
    chosen = choose(stored_filters(dashboard.filters), filters, today or datetime.now(UTC).date(), timezone)
    klips = repo.placed_klips(db, dashboard.id)
    return data_version(dashboard, klips, watermark, chosen), _draw(db, cache, klips, watermark, chosen)


def live_view(
    db: Session | Connection,
    dashboard: Board,
    known_version: str | None = None,
    klips: list[PlacedKlip] | None = None,
    *,
    cache: LiveCache,
    watermark: bool = False,
    filters: Mapping[str, str] | None = None,
    today: date | None = None,
    timezone: str | None = None,
) -> tuple[str, str | None]:
    """The dashboard's version, and its HTML fragment unless the caller already has that version.

    `filters` are the viewer's `f.<id>` values (unknown ids ignored, a bad value 422 naming it);
    `today` is the day in `timezone`, the client's, that date presets count from (and datetimes with
    an offset fall on their day in `timezone`). Asking costs one
    query when nothing changed (none when the caller read the klips already); the fragment itself
    is built once per version (the watermark and the filter values are part of the version).
    """
    chosen = choose(stored_filters(dashboard.filters), filters, today or datetime.now(UTC).date(), timezone)
    if klips is None:
        klips = repo.placed_klips(db, dashboard.id)
    version = data_version(dashboard, klips, watermark, chosen)
    if version == known_version:
        return version, None
    html = cache.fragments.get_or_draw(
        version, lambda: fragment(_draw(db, cache, klips, watermark, chosen, html_text=True))
    )
    return version, html


def fragment(drawings: list[Drawing]) -> str:
    """The klips on the dashboard's grid, as an HTML fragment (the SVGs escape their own text)."""
    if not drawings:
        return '<p class="empty">This dashboard has no klips yet.</p>'
    return grid.grid_html(drawings)

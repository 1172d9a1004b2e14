"""The dashboard builder, the same in the partner console (/partner/dashboards/<id>/builder) and
the client portal (/app/dashboards/<id>/builder): the dashboard on its grid, each klip's size,
order, edit and removal, the klip form with a live preview, and the dashboard's filters.

The klip form is plain fields (selects filled from the chosen source's columns, rows of
aggregates and conditions), turned into the same `KlipIn` the API takes, so a klip built here
means what it means everywhere. htmx refreshes the preview and the column pickers as the fields
change; saving is an ordinary form post (POST/redirect/GET), and a refused save comes back to
the builder with its sentence, nothing of it kept.

Who builds: partner admins and editors (in the console, or signed in as the client in admin
mode), and the client's admins and editors; members and read-only roles never see the builder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from tenantry.api.deps import ClockDep, PathId, WorkDep, services
from tenantry.auth.principal import Principal
from tenantry.auth.sessions import SignedIn
from tenantry.clients import repository as clients_repo
from tenantry.clock import Clock
from tenantry.dashboards import repository as dashboards_repo
from tenantry.dashboards import service as dashboards_service
from tenantry.dashboards.live import live_view, stored_filters, today_in, watermark_for
from tenantry.datasources import repository as sources_repo
from tenantry.db.models import Client, Dashboard
from tenantry.errors import InvalidInput
from tenantry.fields import INT64_MAX
from tenantry.klips.spec import (
    DATE_PRESETS,
    GRID_COLUMNS,
    KINDS,
    DashboardFilter,
    KlipIn,
    KlipPatch,
    LayoutIn,
    PreviewIn,
)
from tenantry.klips.spec import (
    Query as KlipQuery,
)
from tenantry.owners import owner_of
from tenantry.partners import repository as partners_repo
from tenantry.web.pages import (
    VIEW_ONLY,
    PageRoute,
    Refused,
    Visit,
    ascii_number,
    back,
    form_sender,
    may_change,
    page,
    visitor,
)
from tenantry.web.portal import may_build, viewer

router = APIRouter(include_in_schema=False, route_class=PageRoute)

CONSOLE = "/partner/dashboards/{dashboard_id}/builder"
PORTAL = "/app/dashboards/{dashboard_id}/builder"

KIND_WORDS = {
    "value": "Value (one number)",
    "bar": "Bar chart",
    "line": "Line chart",
    "area": "Area chart",
    "pie": "Pie chart",
    "donut": "Donut chart",
    "table": "Table",
    "gauge": "Gauge",
    "text": "Text (Markdown)",
}
OPS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "between", "is_null", "not_null")
OP_WORDS = {
    "eq": "=",
    "ne": "≠",
    "lt": "<",
    "le": "≤",
    "gt": ">",
    "ge": "≥",
    "in": "is one of (a, b, c)",
    "contains": "contains",
    "between": "between (a..b)",
    "is_null": "is empty",
    "not_null": "is not empty",
}
AGGREGATES = ("sum", "avg", "min", "max", "count", "count_distinct", "median")
BUCKETS = ("day", "week", "month", "quarter", "year")
STYLES = ("number", "percent", "currency", "compact")
PRESET_WORDS = {p: p.replace("_", " ").capitalize() for p in DATE_PRESETS}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


# Who builds, and where


def in_portal(request: Request) -> bool:
    return request.url.path.startswith("/app/")


def builder_path(request: Request, dashboard_id: int) -> str:
    return (PORTAL if in_portal(request) else CONSOLE).format(dashboard_id=dashboard_id)


@dataclass(frozen=True)
class Builder:
    """Who builds, and the dashboard they build."""

    signed_in: SignedIn
    principal: Principal
    client: Client | None
    dashboard: Dashboard


NOT_A_BUILDER = "Your role can look at dashboards but not build them."


def builder(db: Session, visit: Visit, dashboard_id: int) -> Builder:
    """The signed-in builder and their dashboard (404 when it is not theirs to see)."""
    client: Client | None
    if in_portal(visit.request):
        signed_in, client = visit.portal(db)
        if not may_change(signed_in):
            raise Refused(VIEW_ONLY, 403, heading="View only")
        if not may_build(signed_in):
            raise Refused(NOT_A_BUILDER, 403)
        principal = viewer(signed_in, client)
    else:
        signed_in = visit.console(db)
        if signed_in.user.role not in ("admin", "editor"):
            raise Refused(NOT_A_BUILDER, 403)
        principal = signed_in.principal
        client = None
    dashboard = dashboards_repo.get_dashboard(db, principal, dashboard_id)
    if client is None and dashboard.client_id is not None:
        client = clients_repo.get_client(db, principal, dashboard.client_id)
    return Builder(signed_in, principal, client, dashboard)


# The klip form's fields

Line = Annotated[str, Form(max_length=200)]
Many = Annotated[list[str] | None, Form()]


def _number(text: str) -> float | int | None:
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.match(text):
        raise InvalidInput(f"{text!r} is not a number.")
    return float(text) if "." in text else int(text)


def _scalar(text: str) -> str | float | int:
    """A condition's value as typed: a number when it looks like one, else the text."""
    text = text.strip()
    return _number(text) if _NUMBER.match(text) else text  # type: ignore[return-value]


def _listed(values: list[str] | None) -> list[str]:
    return [v.strip() for v in values or []]


@dataclass
class KlipFields:
    """The klip form as typed (every value a string); `data()` is the klip it describes."""

    title: str = ""
    kind: str = "value"
    datasource_id: str = ""
    w: str = "6"
    h: str = "2"
    x: str = ""
    y: str = ""
    label: str = ""
    value: str = ""
    series: list[str] = field(default_factory=list)
    # Each chosen series' label, in the order of `series`.
    series_label: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    # A table's formats, a row per column.
    colfmt_column: list[str] = field(default_factory=list)
    colfmt_style: list[str] = field(default_factory=list)
    colfmt_decimals: list[str] = field(default_factory=list)
    colfmt_currency: list[str] = field(default_factory=list)
    colfmt_prefix: list[str] = field(default_factory=list)
    colfmt_suffix: list[str] = field(default_factory=list)
    group_by: str = ""
    bucket: str = ""
    agg_fn: list[str] = field(default_factory=list)
    agg_column: list[str] = field(default_factory=list)
    agg_as: list[str] = field(default_factory=list)
    where_column: list[str] = field(default_factory=list)
    where_op: list[str] = field(default_factory=list)
    where_value: list[str] = field(default_factory=list)
    sort_column: str = ""
    sort_desc: str = ""
    limit: str = ""
    query_json: str = ""
    fmt_style: str = ""
    fmt_decimals: str = ""
    fmt_currency: str = ""
    fmt_prefix: str = ""
    fmt_suffix: str = ""
    compare: str = ""
    compare_target: str = ""
    sparkline: str = ""
    gauge_min: str = ""
    gauge_max: str = ""
    gauge_target: str = ""
    stacked: str = ""
    orientation: str = "vertical"
    text: str = ""

    def source(self) -> int | None:
        chosen = self.datasource_id.strip()
        if not chosen:
            return None
        # An id no row can have (past 64 bits, or not a number) names no source either.
        number = ascii_number(chosen)
        if number is None or not 1 <= number <= INT64_MAX:
            raise InvalidInput("Choose the data source the klip shows.")
        return number

    def aggregates(self) -> list[dict[str, Any]]:
        rows = zip(self.agg_fn, self.agg_column, self.agg_as, strict=False)
        made = []
        for fn, column, as_ in rows:
            if not fn:
                continue
            made.append(
                {"fn": fn, "column": column or None, "as": as_ or (f"{fn}_{column}" if column else fn)}
            )
        return made

    def conditions(self) -> list[dict[str, Any]]:
        made = []
        for column, op, value in zip(self.where_column, self.where_op, self.where_value, strict=False):
            if not column:
                continue
            condition: dict[str, Any] = {"column": column, "op": op}
            if op == "in":
                condition["value"] = [_scalar(v) for v in value.split(",") if v.strip()]
            elif op == "between":
                condition["value"] = value
            elif op not in ("is_null", "not_null"):
                condition["value"] = _scalar(value)
            made.append(condition)
        return made

    def query(self) -> dict[str, Any] | None:
        if self.query_json.strip():
            try:
                given = json.loads(self.query_json)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"Query (JSON): not valid JSON ({exc.msg}, line {exc.lineno}).") from None
            except (ValueError, RecursionError):
                # A number of more than 4,300 digits, or arrays nested thousands deep.
                raise InvalidInput("Query (JSON): not a query this builder can read.") from None
            return KlipQuery.model_validate(given).model_dump(
                mode="json", by_alias=True, exclude_defaults=True
            )
        query: dict[str, Any] = {}
        if self.conditions():
            query["filter"] = self.conditions()
        if self.group_by:
            query["group_by"] = [
                {"column": self.group_by, "bucket": self.bucket} if self.bucket else self.group_by
            ]
        if self.aggregates():
            query["aggregate"] = self.aggregates()
        if self.sort_column:
            query["sort"] = [{"column": self.sort_column, "desc": bool(self.sort_desc)}]
        if self.limit.strip():
            query["limit"] = _number(self.limit)
        return query or None

    def format(self) -> dict[str, Any] | None:
        return _format(self.fmt_style, self.fmt_decimals, self.fmt_currency, self.fmt_prefix, self.fmt_suffix)

    def column_formats(self) -> dict[str, Any]:
        rows = zip(
            self.colfmt_column,
            self.colfmt_style,
            self.colfmt_decimals,
            self.colfmt_currency,
            self.colfmt_prefix,
            self.colfmt_suffix,
            strict=False,
        )
        made = {}
        for column, style, decimals, currency, prefix, suffix in rows:
            shown = _format(style, decimals, currency, prefix, suffix)
            if column and shown is not None:
                made[column] = shown
        return made

    def chosen_series(self) -> list[dict[str, str]]:
        """The series chosen, each with its label when one is given."""
        labels = dict(zip(self._series_shown(), self.series_label, strict=False))
        made = []
        for column in self.series:
            if column:
                label = labels.get(column, "").strip()
                made.append({"column": column, "label": label} if label else {"column": column})
        return made

    def _series_shown(self) -> list[str]:
        return [s for s in self.series if s]

    def data(self) -> dict[str, Any]:
        """The klip these fields describe, as the API's body: only what its kind has, so a field
        left filled in for another kind never refuses the klip."""
        kind = self.kind
        body: dict[str, Any] = {"title": self.title, "kind": kind, "size": {"w": self.w, "h": self.h}}
        if kind == "text":
            body["text"] = self.text or None
            return body
        body["datasource_id"] = self.source()
        columns: dict[str, Any] = {}
        if kind in ("bar", "line", "area"):
            columns["x"] = self.x or None
            series = self.chosen_series()
            if len(series) > 1 or any("label" in s for s in series):
                body["series"] = series
            else:
                columns["y"] = (series[0]["column"] if series else self.y) or None
        elif kind in ("pie", "donut"):
            columns.update(label=self.label or None, value=self.value or None)
        elif kind in ("value", "gauge"):
            columns["value"] = self.value or None
        elif kind == "table":
            chosen = [f for f in self.fields if f]
            if chosen:
                columns["fields"] = chosen
            if self.column_formats():
                columns["formats"] = self.column_formats()
        body["columns"] = {k: v for k, v in columns.items() if v is not None}
        body["query"] = self.query()
        if kind != "table":
            body["format"] = self.format()
        if kind == "bar":
            body["stacked"] = bool(self.stacked)
            body["orientation"] = self.orientation or "vertical"
        if kind == "value":
            body["sparkline"] = bool(self.sparkline)
            if self.compare == "target":
                target = _number(self.compare_target)
                if target is None:
                    raise InvalidInput("Compare with a target: give the target number.")
                body["compare"] = {"target": target}
            elif self.compare:
                body["compare"] = self.compare
        if kind == "gauge":
            body.update(
                min=_number(self.gauge_min), max=_number(self.gauge_max), target=_number(self.gauge_target)
            )
        return body

    def klip(self) -> KlipIn:
        return KlipIn.model_validate(self.data())

    def patch(self) -> KlipPatch:
        """Every field of the klip, given: what the form leaves out is cleared, not kept."""
        data = self.data()
        whole = {name: data.get(name) for name in KlipPatch.model_fields}
        whole.update(stacked=data.get("stacked", False), sparkline=data.get("sparkline", False))
        whole.update(orientation=data.get("orientation", "vertical"), columns=data.get("columns", {}))
        return KlipPatch.model_validate(whole)

    def preview(self) -> PreviewIn:
        data = self.data()
        data["title"] = data["title"] or None
        return PreviewIn.model_validate(data)

    def output_columns(self) -> list[str]:
        """Columns the query makes besides the source's: aggregates' names."""
        return [a["as"] for a in self.aggregates()]


def _format(style: str, decimals: str, currency: str, prefix: str, suffix: str) -> dict[str, Any] | None:
    """A number format from its fields; no style: the number as it is."""
    if not style:
        return None
    given = {
        "style": style,
        "decimals": _number(decimals),
        "currency": currency.strip().upper() or None,
        "prefix": prefix or None,
        "suffix": suffix or None,
    }
    return {k: v for k, v in given.items() if v is not None}


def klip_fields(
    title: Line = "",
    kind: Line = "value",
    datasource_id: Line = "",
    w: Line = "6",
    h: Line = "2",
    x: Line = "",
    y: Line = "",
    label: Line = "",
    value: Line = "",
    series: Many = None,
    series_label: Many = None,
    fields: Many = None,
    colfmt_column: Many = None,
    colfmt_style: Many = None,
    colfmt_decimals: Many = None,
    colfmt_currency: Many = None,
    colfmt_prefix: Many = None,
    colfmt_suffix: Many = None,
    group_by: Line = "",
    bucket: Line = "",
    agg_fn: Many = None,
    agg_column: Many = None,
    agg_as: Many = None,
    where_column: Many = None,
    where_op: Many = None,
    where_value: Many = None,
    sort_column: Line = "",
    sort_desc: Line = "",
    limit: Line = "",
    query_json: Annotated[str, Form(max_length=20_000)] = "",
    fmt_style: Line = "",
    fmt_decimals: Line = "",
    fmt_currency: Line = "",
    fmt_prefix: Line = "",
    fmt_suffix: Line = "",
    compare: Line = "",
    compare_target: Line = "",
    sparkline: Line = "",
    gauge_min: Line = "",
    gauge_max: Line = "",
    gauge_target: Line = "",
    stacked: Line = "",
    orientation: Line = "vertical",
    text: Annotated[str, Form(max_length=20_000)] = "",
) -> KlipFields:
    return KlipFields(
        title=title.strip(),
        kind=kind,
        datasource_id=datasource_id,
        w=w,
        h=h,
        x=x.strip(),
        y=y.strip(),
        label=label.strip(),
        value=value.strip(),
        series=_listed(series),
        series_label=_listed(series_label),
        fields=_listed(fields),
        colfmt_column=_listed(colfmt_column),
        colfmt_style=_listed(colfmt_style),
        colfmt_decimals=_listed(colfmt_decimals),
        colfmt_currency=_listed(colfmt_currency),
        colfmt_prefix=[v for v in colfmt_prefix or []],
        colfmt_suffix=[v for v in colfmt_suffix or []],
        group_by=group_by.strip(),
        bucket=bucket,
        agg_fn=_listed(agg_fn),
        agg_column=_listed(agg_column),
        agg_as=_listed(agg_as),
        where_column=_listed(where_column),
        where_op=_listed(where_op),
        where_value=[v for v in where_value or []],
        sort_column=sort_column.strip(),
        sort_desc=sort_desc,
        limit=limit,
        query_json=query_json,
        fmt_style=fmt_style,
        fmt_decimals=fmt_decimals,
        fmt_currency=fmt_currency,
        fmt_prefix=fmt_prefix,
        fmt_suffix=fmt_suffix,
        compare=compare,
        compare_target=compare_target,
        sparkline=sparkline,
        gauge_min=gauge_min,
        gauge_max=gauge_max,
        gauge_target=gauge_target,
        stacked=stacked,
        orientation=orientation,
        text=text,
    )


KlipFieldsDep = Annotated[KlipFields, Depends(klip_fields)]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def fields_of(klip: dict[str, Any]) -> KlipFields:
    """A saved klip (as the API shows it) in the form's fields, to edit it."""
    columns = klip.get("columns") or {}
    query = klip.get("query") or {}
    size = klip.get("size") or {}
    fmt = klip.get("format") or {}
    compare = klip.get("compare")
    group = (query.get("group_by") or [""])[0]
    sort = (query.get("sort") or [{}])[0]
    aggregates = query.get("aggregate") or []
    conditions = query.get("filter") or []
    simple = (
        not query.get("compute")
        and len(query.get("group_by") or []) <= 1
        and len(query.get("sort") or []) <= 1
    )
    series = [s["column"] for s in klip.get("series") or []] or ([columns["y"]] if columns.get("y") else [])
    labels = [_text(s.get("label")) for s in klip.get("series") or []]
    formats: dict[str, dict[str, Any]] = columns.get("formats") or {}
    return KlipFields(
        title=_text(klip.get("title")),
        kind=_text(klip.get("kind")),
        datasource_id=_text(klip.get("datasource_id")),
        w=_text(size.get("w", 6)),
        h=_text(size.get("h", 2)),
        x=_text(columns.get("x")),
        y=_text(columns.get("y")),
        label=_text(columns.get("label")),
        value=_text(columns.get("value")),
        series=series,
        series_label=labels,
        fields=list(columns.get("fields") or []),
        colfmt_column=list(formats),
        colfmt_style=[_text(f.get("style")) for f in formats.values()],
        colfmt_decimals=[_text(f.get("decimals")) for f in formats.values()],
        colfmt_currency=[_text(f.get("currency")) for f in formats.values()],
        colfmt_prefix=[_text(f.get("prefix")) for f in formats.values()],
        colfmt_suffix=[_text(f.get("suffix")) for f in formats.values()],
        group_by=_text(group.get("column") if isinstance(group, dict) else group),
        bucket=_text(group.get("bucket") if isinstance(group, dict) else ""),
        agg_fn=[_text(a.get("fn")) for a in aggregates],
        agg_column=[_text(a.get("column")) for a in aggregates],
        agg_as=[_text(a.get("as")) for a in aggregates],
        where_column=[_text(c.get("column")) for c in conditions],
        where_op=[_text(c.get("op")) for c in conditions],
        where_value=[
            "..".join(map(str, c["value"]))
            if c.get("op") == "between" and isinstance(c.get("value"), list)
            else ", ".join(map(str, c["value"]))
            if isinstance(c.get("value"), list)
            else _text(c.get("value"))
            for c in conditions
        ],
        sort_column=_text(sort.get("column")),
        sort_desc="1" if sort.get("desc") else "",
        limit=_text(query.get("limit")),
        # What the fields cannot say (computed columns, several groups or sorts) stays as JSON.
        query_json="" if simple else json.dumps(query, indent=2),
        fmt_style=_text(fmt.get("style")),
        fmt_decimals=_text(fmt.get("decimals")),
        fmt_currency=_text(fmt.get("currency")),
        fmt_prefix=_text(fmt.get("prefix")),
        fmt_suffix=_text(fmt.get("suffix")),
        compare="target" if isinstance(compare, dict) else _text(compare),
        compare_target=_text(compare.get("target")) if isinstance(compare, dict) else "",
        sparkline="1" if klip.get("sparkline") else "",
        gauge_min=_text(klip.get("min")),
        gauge_max=_text(klip.get("max")),
        gauge_target=_text(klip.get("target")),
        stacked="1" if klip.get("stacked") else "",
        orientation=_text(klip.get("orientation") or "vertical"),
        text=_text(klip.get("text")),
    )


# Reading the builder's page


def saved_klips(db: Session, b: Builder) -> list[dict[str, Any]]:
    """The dashboard's klips in order, each as the API shows it (with its size and definition)."""
    out = dashboards_service.dashboard_out(db, b.principal, b.dashboard)
    return [klip.model_dump(mode="json", by_alias=True) for klip in out.klips]


def saved_filters(b: Builder) -> list[DashboardFilter]:
    return stored_filters(b.dashboard.filters)


def _sources(db: Session, b: Builder) -> list[Any]:
    owner = owner_of(db, b.dashboard.partner_id, b.dashboard.client_id)
    return list(sources_repo.list_sources(db, owner, 200, 0)[0])


def _form_context(
    db: Session, b: Builder, form: KlipFields, base: str, editing: int | None
) -> dict[str, Any]:
    sources = _sources(db, b)
    chosen = form.source()
    if chosen is None and sources and form.kind != "text":
        chosen = sources[0].id
        form.datasource_id = str(chosen)
    types: dict[str, str] = {}
    if chosen is not None and form.kind != "text":
        types = {
            name: str(t) for name, t in dashboards_service.source_columns(db, b.principal, chosen).items()
        }
    made = [c for c in form.output_columns() if c not in types]
    aggregate_rows = max(len(form.agg_fn) + 1, 2)
    format_rows = len([c for c in form.colfmt_column if c]) + 1
    condition_rows = max(len(form.where_column) + 1, 2)
    return {
        "base": base,
        "form": form,
        "editing": editing,
        "sources": sources,
        "column_types": types,
        "columns": list(types) + made,
        "kinds": KINDS,
        "kind_words": KIND_WORDS,
        "ops": OPS,
        "op_words": OP_WORDS,
        "aggregates": AGGREGATES,
        "buckets": BUCKETS,
        "styles": STYLES,
        "aggregate_rows": range(aggregate_rows),
        "condition_rows": range(condition_rows),
        "format_rows": range(format_rows),
        "series_shown": list(zip(form.chosen_series(), range(100), strict=False)),
        "grid_columns": GRID_COLUMNS,
    }


def _page(
    db: Session, visit: Visit, dashboard_id: int, klip_id: int | None
) -> tuple[SignedIn, dict[str, Any]]:
    b = builder(db, visit, dashboard_id)
    base = builder_path(visit.request, dashboard_id)
    klips = saved_klips(db, b)
    editing = next((k for k in klips if k["id"] == klip_id), None) if klip_id is not None else None
    form = fields_of(editing) if editing is not None else KlipFields()
    cache = services(visit.request).renderer.live
    timezone = partners_repo.days_timezone(db, b.dashboard.partner_id, b.dashboard.client_id)
    _, drawing = live_view(
        db,
        b.dashboard,
        cache=cache,
        watermark=watermark_for(b.client, visit.now),
        today=today_in(timezone, visit.now),
        timezone=timezone,
    )
    filters = saved_filters(b)
    sources = _sources(db, b)
    all_columns = sorted(
        {c for s in sources for c in dashboards_service.source_columns(db, b.principal, s.id)}
    )
    view = "/app/dashboards/{}" if in_portal(visit.request) else "/partner/clients/{}#dashboards"
    return b.signed_in, {
        **_form_context(db, b, form, base, editing["id"] if editing else None),
        "dashboard": b.dashboard,
        "client": b.client,
        "klips": klips,
        "drawing": drawing,
        "filters": filters,
        "filter_columns": all_columns,
        "presets": PRESET_WORDS,
        "back_to": view.format(dashboard_id if in_portal(visit.request) else b.dashboard.client_id)
        if in_portal(visit.request) or b.dashboard.client_id is not None
        else "/partner",
    }


@router.get(CONSOLE, response_class=HTMLResponse)
@router.get(PORTAL, response_class=HTMLResponse)
async def builder_page(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, visitor(heading="Not found")],
    work: WorkDep,
    klip: Annotated[int | None, Query(ge=1, le=2**53)] = None,
) -> Response:
    """The builder: the dashboard on its grid, the klip form and its preview, the filters."""
    signed_in, context = await work(_page, visit, dashboard_id, klip)
    return page(request, signed_in, "builder.html", **context)


# The live parts (htmx): the klip form again for a new source or new columns, and the preview


def _fragment_refusal(visit: Visit, refusal: Refused) -> Response:
    """A refused preview answers in place of the preview: the sentence naming the field."""
    return HTMLResponse(
        f'<p class="error" role="alert">{escape(refusal.sentence)}</p>', status_code=refusal.status
    )


def _form_again(
    db: Session, visit: Visit, dashboard_id: int, form: KlipFields, editing: int | None
) -> tuple[SignedIn, dict[str, Any]]:
    b = builder(db, visit, dashboard_id)
    base = builder_path(visit.request, dashboard_id)
    return b.signed_in, _form_context(db, b, form, base, editing)


@router.post(CONSOLE + "/form", response_class=HTMLResponse)
@router.post(PORTAL + "/form", response_class=HTMLResponse)
async def klip_form_again(
    dashboard_id: PathId,
    request: Request,
    visit: Annotated[Visit, form_sender()],
    work: WorkDep,
    form: KlipFieldsDep,
    editing: Annotated[int | None, Form(ge=1, le=2**53)] = None,
) -> Response:
    """The klip form for what is chosen so far (another source, kind or aggregate)."""
    visit.refused = _fragment_refusal
    signed_in, context = await work(_form_again, visit, dashboard_id, form, editing)
    return page(request, signed_in, "_builder_form.html", again_rendered=True, **context)


def _preview(db: Session, visit: Visit, dashboard_id: int, form: KlipFields) -> str:
    b = builder(db, visit, dashboard_id)
    cache = services(visit.request).renderer.live
    out = dashboards_service.preview(db, b.principal, form.preview(), cache=cache)
    rows = len(out.rows)
    return f'{out.svg}<p class="small">{rows} row{"" if rows == 1 else "s"} after the query.</p>'


@router.post(CONSOLE + "/preview", response_class=HTMLResponse)
@router.post(PORTAL + "/preview", response_class=HTMLResponse)
async def klip_preview(
    dashboard_id: PathId, visit: Annotated[Visit, form_sender()], work: WorkDep, form: KlipFieldsDep
) -> Response:
    """The klip drawn from the form as it is, nothing saved."""
    visit.refused = _fragment_refusal
    return HTMLResponse(
        await work(_preview, visit, dashboard_id, form), headers={"Cache-Control": "no-store"}
    )


# The builder's forms: each goes back to the builder, saying what happened or why not.

BuilderForm = Annotated[Visit, form_sender()]


async def _builder_form(
    visit: Visit, work: WorkDep, dashboard_id: int, action: Callable[..., str], *args: Any, again: str = ""
) -> Response:
    path = builder_path(visit.request, dashboard_id)
    visit.back = path + again
    notice = await work(_as_builder, visit, dashboard_id, action, *args)
    return back(visit.request, path, notice=notice)


def _as_builder(db: Session, visit: Visit, dashboard_id: int, action: Callable[..., str], *args: Any) -> str:
    b = builder(db, visit, dashboard_id)
    return action(db, b, *args)


def _add_klip(db: Session, b: Builder, clock: Clock, form: KlipFields) -> str:
    klip = dashboards_service.add_klip(db, clock, b.principal, b.dashboard.id, form.klip())
    return f"Klip {klip.title} added."


@router.post(CONSOLE + "/klips")
@router.post(PORTAL + "/klips")
async def add_klip(
    dashboard_id: PathId, visit: BuilderForm, work: WorkDep, clock: ClockDep, form: KlipFieldsDep
) -> Response:
    return await _builder_form(visit, work, dashboard_id, _add_klip, clock, form)


def _update_klip(db: Session, b: Builder, clock: Clock, klip_id: int, form: KlipFields) -> str:
    klip = dashboards_service.update_klip(db, clock, b.principal, b.dashboard.id, klip_id, form.patch())
    return f"Klip {klip.title} saved."


@router.post(CONSOLE + "/klips/{klip_id}")
@router.post(PORTAL + "/klips/{klip_id}")
async def update_klip(
    dashboard_id: PathId,
    klip_id: PathId,
    visit: BuilderForm,
    work: WorkDep,
    clock: ClockDep,
    form: KlipFieldsDep,
) -> Response:
    return await _builder_form(
        visit, work, dashboard_id, _update_klip, clock, klip_id, form, again=f"?klip={klip_id}"
    )


def _remove_klip(db: Session, b: Builder, clock: Clock, klip_id: int) -> str:
    dashboards_service.delete_klip(db, clock, b.principal, b.dashboard.id, klip_id)
    return "Klip removed."


@router.post(CONSOLE + "/klips/{klip_id}/remove")
@router.post(PORTAL + "/klips/{klip_id}/remove")
async def remove_klip(
    dashboard_id: PathId, klip_id: PathId, visit: BuilderForm, work: WorkDep, clock: ClockDep
) -> Response:
    return await _builder_form(visit, work, dashboard_id, _remove_klip, clock, klip_id)


def _layout(db: Session, b: Builder, clock: Clock, klip_id: int, move: str, w: str, h: str) -> str:
    klips = saved_klips(db, b)
    order = [{"id": k["id"], "size": k.get("size") or {"w": 6, "h": 2}} for k in klips]
    at = next((i for i, k in enumerate(order) if k["id"] == klip_id), None)
    if at is None:
        raise InvalidInput("No such klip on this dashboard.")
    if move in ("up", "down"):
        to = at - 1 if move == "up" else at + 1
        if 0 <= to < len(order):
            order[at], order[to] = order[to], order[at]
        sentence = "Klip moved."
    else:
        order[at] = {"id": klip_id, "size": {"w": w, "h": h}}
        sentence = "Klip resized."
    dashboards_service.set_layout(
        db, clock, b.principal, b.dashboard.id, LayoutIn.model_validate({"klips": order})
    )
    return sentence


@router.post(CONSOLE + "/layout")
@router.post(PORTAL + "/layout")
async def change_layout(
    dashboard_id: PathId,
    visit: BuilderForm,
    work: WorkDep,
    clock: ClockDep,
    klip_id: Annotated[int, Form(ge=1, le=2**53)],
    move: Annotated[str, Form(max_length=10)] = "",
    w: Line = "6",
    h: Line = "2",
) -> Response:
    return await _builder_form(visit, work, dashboard_id, _layout, clock, klip_id, move, w, h)


def _add_filter(db: Session, b: Builder, clock: Clock, new: dict[str, str]) -> str:
    given = DashboardFilter.model_validate({k: v for k, v in new.items() if v})
    filters = [f for f in saved_filters(b) if f.id != given.id] + [given]
    dashboards_service.set_filters(db, clock, b.principal, b.dashboard.id, filters)
    return f"Filter {given.label or given.id} saved."


@router.post(CONSOLE + "/filters")
@router.post(PORTAL + "/filters")
async def add_filter(
    dashboard_id: PathId,
    visit: BuilderForm,
    work: WorkDep,
    clock: ClockDep,
    filter_id: Line = "",
    filter_kind: Line = "date_range",
    filter_column: Line = "",
    filter_label: Line = "",
    filter_default: Line = "",
) -> Response:
    new = {
        "id": filter_id.strip(),
        "kind": filter_kind,
        "column": filter_column.strip(),
        "label": filter_label.strip(),
        "default": filter_default.strip(),
    }
    return await _builder_form(visit, work, dashboard_id, _add_filter, clock, new)


def _remove_filter(db: Session, b: Builder, clock: Clock, filter_id: str) -> str:
    filters = [f for f in saved_filters(b) if f.id != filter_id]
    dashboards_service.set_filters(db, clock, b.principal, b.dashboard.id, filters)
    return "Filter removed."


@router.post(CONSOLE + "/filters/remove")
@router.post(PORTAL + "/filters/remove")
async def remove_filter(
    dashboard_id: PathId, visit: BuilderForm, work: WorkDep, clock: ClockDep, filter_id: Line = ""
) -> Response:
    return await _builder_form(visit, work, dashboard_id, _remove_filter, clock, filter_id)

"""What a klip is (SPEC §13): its kind, its size on the dashboard's grid, the columns it shows,
their formats, the query run over its data source's rows, its comparison, and a dashboard's
filters. Only the shape is checked here (422 naming the field); whether the columns exist in the
data source, and have the right type, is checked against the source by `klips.query.check`.

The same models are the API's request bodies, the console's and portal's builder forms, and what
the klips table stores (`definition`, as JSON), so a klip means the same thing everywhere.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import Field, FiniteFloat, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from tenantry.fields import Column, Lines, Name, OneLine, RowId, Strict
from tenantry.text import refusal

KlipKind = Literal["value", "bar", "line", "area", "pie", "donut", "table", "gauge", "text"]
KINDS: tuple[str, ...] = KlipKind.__args__  # type: ignore[attr-defined]
CHARTED_SERIES = ("bar", "line", "area")

# The grid: 12 columns; a klip spans w of them and h rows.
GRID_COLUMNS = 12


class Size(Strict):
    w: Annotated[int, Field(ge=1, le=GRID_COLUMNS)] = 6
    h: Annotated[int, Field(ge=1, le=6)] = 2


Affix = Annotated[str, StringConstraints(max_length=12), OneLine]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Format(Strict):
    """How a number is shown: en-US grouping; `percent` shows the number as it is (12.5 → 12.5%);
    `compact` shows 2,500,000 as 2.5M; `currency` uses `currency` (USD unless given)."""

    style: Literal["number", "percent", "currency", "compact"] = "number"
    decimals: Annotated[int, Field(ge=0, le=10)] | None = None
    currency: Currency | None = None
    prefix: Affix | None = None
    suffix: Affix | None = None


FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "between", "is_null", "not_null"]
# A number a query compares with must be one a 64-bit float holds (the engine compares floats):
# finite, and at most about 1.8e308 either side of zero. JSON can spell more (`1e400`, a 400-digit
# integer; Python's JSON parser even reads `NaN`), so anything beyond is refused (422), never kept.
# Its text is one line (`Condition` checks it first, naming the item; `OneLine` documents it).
Scalar = Annotated[str, OneLine] | FiniteFloat | int | bool
NUMBER_REFUSAL = "must be a finite number between -1.8e308 and 1.8e308"
Bucket = Literal["day", "week", "month", "quarter", "year"]
AggregateFn = Literal["sum", "avg", "min", "max", "count", "count_distinct", "median"]


class Condition(Strict):
    """One row filter. `in` takes a list; `between` takes `[a, b]` or the text `a..b`, both ends
    included; `is_null` and `not_null` take no value; the others one value."""

    column: Column
    op: FilterOp
    value: Scalar | Annotated[list[Scalar], Field(max_length=200)] | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _value_fits(cls, value: Any) -> Any:
        """A value's text is one line, as any one-line field's (no control characters, no lone
        surrogates, which no page, JSON or database can carry), and its numbers are finite floats:
        refused as sent, naming `value` (and which item of a list)."""
        items = value if isinstance(value, list) else [value]
        for position, item in enumerate(items, start=1):
            why = _scalar_refusal(item)
            if why is not None:
                code, message = why
                where = f" (item {position} of the list)" if isinstance(value, list) else ""
                raise PydanticCustomError(code, message + where)
        return value

    @model_validator(mode="after")
    def _value_for_op(self) -> Condition:
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op == "in":
            if not isinstance(self.value, list) or not self.value:
                raise ValueError("in takes a non-empty list of values")
        elif self.op == "between":
            if isinstance(self.value, str) and ".." in self.value:
                low, _, high = self.value.partition("..")
                self.value = [low, high]
            if not isinstance(self.value, list) or len(self.value) != 2:
                raise ValueError("between takes [low, high] or the text 'low..high'")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.op} takes one value")
        return self


def _scalar_refusal(value: Any) -> tuple[str, str] | None:
    """Why a condition refuses a value (the error's type and sentence), or None."""
    if isinstance(value, str):
        why = refusal(value)
        return None if why is None else ("control_character", why)
    if isinstance(value, int | float) and not isinstance(value, bool) and not finite_number(value):
        return "finite_number", NUMBER_REFUSAL
    return None


def finite_number(value: int | float) -> bool:
    """Whether a number is one a 64-bit float holds (an integer of 400 digits is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


class Bucketed(Strict):
    """Group a date column by day, week (starting Monday), month, quarter or year."""

    column: Column
    bucket: Bucket


class Aggregate(Strict):
    fn: AggregateFn
    # `count` without a column counts rows.
    column: Column | None = None
    as_: Annotated[Column, Field(alias="as")]

    model_config = {"populate_by_name": True, "extra": "forbid"}

    @model_validator(mode="after")
    def _column_unless_count(self) -> Aggregate:
        if self.column is None and self.fn != "count":
            raise ValueError(f"{self.fn} needs a column")
        return self


Expression = Annotated[str, StringConstraints(min_length=1, max_length=500), OneLine]


class Compute(Strict):
    """A new column from arithmetic over columns and numbers: `+ - * / ( )`, `round`, `abs`,
    `coalesce` (see `klips.expr`); computed on rows before grouping."""

    as_: Annotated[Column, Field(alias="as")]
    expr: Expression

    model_config = {"populate_by_name": True, "extra": "forbid"}


class Sort(Strict):
    column: Column
    desc: bool = False


class Query(Strict):
    filter: Annotated[list[Condition], Field(max_length=20)] = []
    group_by: Annotated[list[Column | Bucketed], Field(max_length=5)] = []
    aggregate: Annotated[list[Aggregate], Field(max_length=20)] = []
    compute: Annotated[list[Compute], Field(max_length=20)] = []
    sort: Annotated[list[Sort], Field(max_length=5)] = []
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = None


class Series(Strict):
    column: Column
    label: Name | None = None


class Target(Strict):
    target: FiniteFloat


Compare = Literal["previous_period", "previous_row"] | Target


class KlipColumns(Strict):
    x: Column | None = None
    y: Column | None = None
    label: Column | None = None
    value: Column | None = None
    # `table` shows all columns, or only these, each with its format.
    fields: Annotated[list[Column], Field(max_length=20)] | None = None
    formats: Annotated[dict[Column, Format], Field(max_length=20)] | None = None


Markdown = Annotated[str, StringConstraints(min_length=1, max_length=20_000), Lines]

# Which `columns` each kind must name (a bar, line or area may give `series` instead of `y`).
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "value": ("value",),
    "bar": ("x",),
    "line": ("x",),
    "area": ("x",),
    "pie": ("label", "value"),
    "donut": ("label", "value"),
    "table": (),
    "gauge": ("value",),
    "text": (),
}


class KlipBody(Strict):
    """What is drawn and from what: everything of a klip but its title and size."""

    kind: KlipKind
    datasource_id: RowId | None = None
    columns: KlipColumns = KlipColumns()
    series: Annotated[list[Series], Field(min_length=1, max_length=10)] | None = None
    stacked: bool = False
    orientation: Literal["vertical", "horizontal"] = "vertical"
    query: Query | None = None
    format: Format | None = None
    compare: Compare | None = None
    sparkline: bool = False
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None
    target: FiniteFloat | None = None
    text: Markdown | None = None

    @model_validator(mode="after")
    def _fits_kind(self) -> KlipBody:
        for problem in shape_problems(self):
            raise ValueError(problem)
        return self


def shape_problems(body: KlipBody) -> list[str]:
    """What a klip's shape gets wrong for its kind, as sentences naming the fields."""
    kind = body.kind
    problems = []
    if kind == "text":
        if body.text is None:
            problems.append("a text klip needs text (Markdown)")
        if body.datasource_id is not None:
            problems.append("a text klip has no datasource_id")
    else:
        if body.datasource_id is None:
            problems.append(f"a {kind} klip needs a datasource_id")
        if body.text is not None:
            problems.append("only a text klip has text")
    missing = [c for c in REQUIRED_COLUMNS[kind] if getattr(body.columns, c) is None]
    if missing:
        problems.append(f"a {kind} klip needs columns.{' and columns.'.join(missing)}")
    if kind in CHARTED_SERIES and body.columns.y is None and not body.series:
        problems.append(f"a {kind} klip needs columns.y or series")
    if body.series is not None and kind not in CHARTED_SERIES:
        problems.append("only bar, line and area klips have series")
    if (body.stacked or body.orientation != "vertical") and kind != "bar":
        problems.append("only a bar klip is stacked or horizontal")
    if (body.compare is not None or body.sparkline) and kind != "value":
        problems.append("only a value klip has compare or sparkline")
    if any(v is not None for v in (body.min, body.max, body.target)) and kind != "gauge":
        problems.append("only a gauge klip has min, max and target")
    if kind == "gauge" and gauge_range(body)[0] >= gauge_range(body)[1]:
        problems.append("a gauge's min must be below its max")
    if body.columns.formats and kind != "table":
        problems.append("only a table klip has columns.formats")
    if kind == "text" and body.query is not None:
        problems.append("a text klip has no query")
    return problems


def gauge_range(body: KlipBody) -> tuple[float, float]:
    """A gauge's scale: 0 to 100 unless given."""
    low = body.min if body.min is not None else 0.0
    high = body.max if body.max is not None else 100.0
    return low, high


class KlipIn(KlipBody):
    title: Name
    size: Size = Size()


class KlipPatch(Strict):
    """A partial klip: the fields given replace the klip's (the result must be a whole klip)."""

    title: Name | None = None
    size: Size | None = None
    kind: KlipKind | None = None
    datasource_id: RowId | None = None
    columns: KlipColumns | None = None
    series: Annotated[list[Series], Field(min_length=1, max_length=10)] | None = None
    stacked: bool | None = None
    orientation: Literal["vertical", "horizontal"] | None = None
    query: Query | None = None
    format: Format | None = None
    compare: Compare | None = None
    sparkline: bool | None = None
    min: FiniteFloat | None = None
    max: FiniteFloat | None = None
    target: FiniteFloat | None = None
    text: Markdown | None = None


class PreviewIn(KlipBody):
    """A klip drawn without saving it (the builder's live preview)."""

    title: Name | None = None
    size: Size = Size()


class LayoutItem(Strict):
    id: RowId
    size: Size


class LayoutIn(Strict):
    """Every klip of the dashboard, in its new order, with its size."""

    klips: Annotated[list[LayoutItem], Field(max_length=50)]


FilterId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=200), OneLine]
# A filter's value chosen for a download or an e-mail: "" clears a filter's default ("Any time").
ChosenValue = Annotated[str, StringConstraints(max_length=200), OneLine]


class DashboardFilter(Strict):
    """A filter viewers choose (`?f.<id>=value`); it applies to every klip whose source has the
    column. A date range takes a preset (`last_30_days`…) or `YYYY-MM-DD..YYYY-MM-DD`."""

    id: FilterId
    kind: Literal["date_range", "select"]
    column: Column
    label: Name | None = None
    default: FilterValue | None = None


DATE_PRESETS = (
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "last_90_days",
    "this_month",
    "last_month",
    "this_quarter",
    "last_quarter",
    "this_year",
    "last_year",
)
_RANGE = re.compile(r"^\d{4}-\d{2}-\d{2}\.\.\d{4}-\d{2}-\d{2}$")


def looks_like_date_range(value: str) -> bool:
    """A preset or `YYYY-MM-DD..YYYY-MM-DD` (whether the dates exist is `klips.dates`' job)."""
    return value in DATE_PRESETS or bool(_RANGE.match(value))


def definition_of(body: KlipBody) -> dict[str, Any]:
    """What the klips table keeps as the klip's definition: the body without kind, source, title
    and size (they have their own columns), leaving out what is unset. A template's klip names
    its source by `datasource_ref`; that is the template's business, not the definition's."""
    return body.model_dump(
        mode="json",
        by_alias=True,
        exclude={"kind", "datasource_id", "datasource_ref", "title", "size"},
        exclude_defaults=True,
    )


def stored_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A klip's definition as read from the klips table. Klips deployed from a template before
    `definition_of` left out `datasource_ref` still hold it; it is dropped here, so those klips
    draw and can be edited like any other (their drift fingerprints, taken with it, still match)."""
    if "datasource_ref" not in definition:
        return definition
    return {name: value for name, value in definition.items() if name != "datasource_ref"}

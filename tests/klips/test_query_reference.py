"""run() agrees with a plain-Python reading of SPEC §13 on random small tables."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.klips.expr import parse
from tenantry.klips.query import QueryError, run
from tenantry.klips.spec import Condition, Query

ROW = st.fixed_dictionaries(
    {
        "g": st.sampled_from(["a", "b", "c", None]),
        "n": st.one_of(st.none(), st.integers(-50, 50)),
        "d": st.one_of(
            st.none(), st.integers(0, 400).map(lambda k: (date(2026, 1, 1) + timedelta(days=k)).isoformat())
        ),
    }
)
CONDITION = st.one_of(
    st.builds(
        lambda op, v: {"column": "n", "op": op, "value": v},
        st.sampled_from(["eq", "ne", "lt", "le", "gt", "ge"]),
        st.integers(-50, 50),
    ),
    st.builds(
        lambda a, b: {"column": "n", "op": "between", "value": [min(a, b), max(a, b)]},
        st.integers(-50, 50),
        st.integers(-50, 50),
    ),
    st.builds(lambda op: {"column": "d", "op": op}, st.sampled_from(["is_null", "not_null"])),
    st.builds(
        lambda v: {"column": "g", "op": "in", "value": v},
        st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=2),
    ),
)
FNS = ["sum", "avg", "min", "max", "count", "count_distinct", "median"]


def holds(condition: dict[str, Any], row: dict[str, Any]) -> bool:
    value, op = row[condition["column"]], condition["op"]
    target: Any = condition.get("value")
    if op == "is_null":
        return value is None
    if op == "not_null":
        return value is not None
    if value is None:
        return False  # comparisons skip nulls
    if op == "in":
        return value in target
    if op == "between":
        return bool(target[0] <= value <= target[1])
    return bool(
        {
            "eq": value == target,
            "ne": value != target,
            "lt": value < target,
            "le": value <= target,
            "gt": value > target,
            "ge": value >= target,
        }[op]
    )


def aggregate(fn: str, values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    if fn == "sum":
        return sum(present)
    if fn == "count":
        return len(present)
    if fn == "count_distinct":
        return len(set(present))
    if not present:
        return None
    functions: dict[str, Any] = {"avg": statistics.fmean, "min": min, "max": max, "median": statistics.median}
    return functions[fn](present)


def key(value: Any, bucket: bool) -> Any:
    return value[:8] + "01" if bucket and value is not None else value


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(ROW, max_size=25),
    conditions=st.lists(CONDITION, max_size=2),
    by=st.sampled_from(["g", "month"]),
    fn=st.sampled_from(FNS),
)
def test_run_agrees_with_a_plain_python_reference(
    rows: list[dict[str, Any]], conditions: list[dict[str, Any]], by: str, fn: str
) -> None:
    column = "g" if by == "g" else "d"
    group = column if by == "g" else {"column": "d", "bucket": "month"}
    query = Query.model_validate(
        {"filter": conditions, "group_by": [group], "aggregate": [{"fn": fn, "column": "n", "as": "v"}]}
    )
    kept = [row for row in rows if all(holds(c, row) for c in conditions)]
    groups: dict[Any, list[Any]] = {}
    for row in kept:
        groups.setdefault(key(row[column], by == "month"), []).append(row["n"])
    expected = sorted(
        ((k, aggregate(fn, values)) for k, values in groups.items()),
        key=lambda kv: (kv[0] is None, kv[0] or ""),
    )
    table = run(rows, query)
    got = [(row[column], row["v"]) for row in table.rows]
    assert [k for k, _ in got] == [k for k, _ in expected]
    for (_, value), (_, reference) in zip(got, expected, strict=True):
        assert value == (reference if reference is None else pytest.approx(reference))


MIXED: list[dict[str, Any]] = [
    {"d": "2026-03-04", "t": "2026-03-04T10:00:00Z", "c": "a", "n": 1, "f": 1.5, "b": True},
    {"d": "2026-03-10", "t": None, "c": "b", "n": 2, "f": None, "b": False},
    {"d": None, "t": "2026-04-01T00:00:00+02:00", "c": None, "n": None, "f": 2.0, "b": None},
]
VALUE = st.one_of(
    st.sampled_from(["1", "2.5", "true", "a", "2026-03-04", "2026-03-04..2026-04-01", "x..y", ""]),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
    st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    column=st.sampled_from(["d", "t", "c", "n", "f", "b", "missing"]),
    op=st.sampled_from(
        ["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "between", "is_null", "not_null"]
    ),
    value=st.one_of(VALUE, st.lists(VALUE, min_size=1, max_size=3)),
)
def test_any_condition_either_runs_or_is_refused_as_a_query_error(column: str, op: str, value: Any) -> None:
    try:
        condition = Condition.model_validate(
            {"column": column, "op": op, "value": None if op in ("is_null", "not_null") else value}
        )
    except ValueError:
        return  # the shape is refused before any query runs
    # A dashboard's filter never fails a klip: at worst it matches no row.
    assert len(run(MIXED, None, where=[condition]).rows) <= len(MIXED)
    assert len(run(MIXED, Query(limit=5), where=[condition]).rows) <= len(MIXED)
    try:
        run(MIXED, Query(filter=[condition], limit=5))
    except QueryError as error:
        assert error.field.startswith("query.filter[0]")


def expression(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.sampled_from(["x", "y", '"z z"']), st.integers(0, 9).map(str), st.sampled_from(["0.5", "2.25"])
    )
    if depth == 0:
        return leaf
    inner = expression(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(inner, st.sampled_from("+-*/"), inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        inner.map(lambda e: f"-{e}"),
        inner.map(lambda e: f"abs({e})"),
        st.tuples(inner, st.integers(0, 3)).map(lambda t: f"round({t[0]}, {t[1]})"),
        st.tuples(inner, inner).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
    )


NUMBER = st.one_of(st.none(), st.integers(-20, 20), st.sampled_from([0.5, -1.5, 2.25, 0.125]))


@settings(max_examples=200, deadline=None)
@given(
    text=expression(),
    rows=st.lists(st.fixed_dictionaries({"x": NUMBER, "y": NUMBER, "z z": NUMBER}), min_size=1, max_size=6),
)
def test_the_engine_computes_what_the_expression_says(text: str, rows: list[dict[str, Any]]) -> None:
    parsed = parse(text)
    table = run(rows, Query.model_validate({"compute": [{"as": "v", "expr": text}]}))
    for row, answer in zip(rows, table.rows, strict=True):
        expected = parsed.evaluate(row)
        assert answer["v"] == (None if expected is None else pytest.approx(expected, rel=1e-9, abs=1e-9))

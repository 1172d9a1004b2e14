"""run() agrees with a plain-Python reading of SPEC §13 on random small tables."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenantry.klips.query import run
from tenantry.klips.spec import Query

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
    value, op, target = row[condition["column"]], condition["op"], condition.get("value")
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
    return {"avg": statistics.fmean, "min": min, "max": max, "median": statistics.median}[fn](present)


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

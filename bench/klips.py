"""A dashboard of 12 klip queries over three 100,000-row sources, against the same aggregations
written by hand in the engine (polars).

Builds three sources (orders, visits, tickets: dates over two years, a category, a region,
numbers with some nulls), then times, best of several runs:
- cold: empty caches; each source's rows turned into the engine's table, the 12 queries run
  through `QueryCache` and each answer drawn as SVG;
- warm: the same dashboard again, every answer and drawing cached (what a second viewer gets);
- floor: the same 12 aggregations written by hand in polars (each source loaded once), and the
  same drawings.
With --engines it also times turning one source into a polars table and into a DuckDB table (the
measurement that chose polars; DuckDB is not a dependency, so it is skipped when absent).
Figures on the last line.

    .venv/bin/python bench/klips.py [--repeat 5] [--engines]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from tenantry.charts import svg
from tenantry.klips.query import QueryCache
from tenantry.klips.spec import KlipBody

ROWS = 100_000
START = date(2025, 1, 1)
Rows = list[dict[str, Any]]


def orders(rng: random.Random) -> Rows:
    return [
        {
            "day": (START + timedelta(days=rng.randrange(730))).isoformat(),
            "category": rng.choice(["books", "games", "music", "garden", "tools", "toys"]),
            "region": rng.choice(["north", "south", "east", "west"]),
            "amount": None if rng.random() < 0.05 else round(rng.uniform(1, 500), 2),
            "units": rng.randrange(1, 20),
            "customer": f"c{rng.randrange(20_000)}",
        }
        for _ in range(ROWS)
    ]


def visits(rng: random.Random) -> Rows:
    base = datetime(2025, 1, 1)
    return [
        {
            "at": (base + timedelta(seconds=rng.randrange(730 * 86_400))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "page": rng.choice(["/", "/pricing", "/docs", "/blog", "/signup"]),
            "region": rng.choice(["north", "south", "east", "west"]),
            "seconds": None if rng.random() < 0.1 else rng.randrange(1, 900),
            "visitor": f"v{rng.randrange(50_000)}",
        }
        for _ in range(ROWS)
    ]


def tickets(rng: random.Random) -> Rows:
    return [
        {
            "opened": (START + timedelta(days=rng.randrange(730))).isoformat(),
            "category": rng.choice(["billing", "bug", "question", "feature"]),
            "region": rng.choice(["north", "south", "east", "west"]),
            "hours": None if rng.random() < 0.2 else round(rng.expovariate(1 / 30), 1),
            "score": None if rng.random() < 0.5 else rng.randrange(1, 6),
        }
        for _ in range(ROWS)
    ]


def klip(kind: str, columns: dict[str, Any], query: dict[str, Any]) -> KlipBody:
    return KlipBody.model_validate({"kind": kind, "datasource_id": 1, "columns": columns, "query": query})


MONTHLY = {"column": "day", "bucket": "month"}
KLIPS: list[tuple[str, KlipBody]] = [
    # orders
    (
        "orders",
        klip(
            "line",
            {"x": "day", "y": "revenue"},
            {"group_by": [MONTHLY], "aggregate": [{"fn": "sum", "column": "amount", "as": "revenue"}]},
        ),
    ),
    (
        "orders",
        klip(
            "bar",
            {"x": "category", "y": "revenue"},
            {
                "filter": [{"column": "day", "op": "between", "value": "2026-01-01..2026-06-30"}],
                "group_by": ["category"],
                "aggregate": [{"fn": "sum", "column": "amount", "as": "revenue"}],
                "sort": [{"column": "revenue", "desc": True}],
            },
        ),
    ),
    (
        "orders",
        klip(
            "value",
            {"value": "customers"},
            {
                "filter": [{"column": "region", "op": "in", "value": ["north", "east"]}],
                "aggregate": [{"fn": "count_distinct", "column": "customer", "as": "customers"}],
            },
        ),
    ),
    (
        "orders",
        klip(
            "table",
            {"fields": ["region", "avg_price", "median_price"]},
            {
                "compute": [{"as": "price", "expr": "round(amount / units, 2)"}],
                "group_by": ["region"],
                "aggregate": [
                    {"fn": "avg", "column": "price", "as": "avg_price"},
                    {"fn": "median", "column": "price", "as": "median_price"},
                ],
            },
        ),
    ),
    # visits
    (
        "visits",
        klip(
            "line",
            {"x": "at", "y": "visits"},
            {
                "group_by": [{"column": "at", "bucket": "week"}],
                "aggregate": [{"fn": "count", "as": "visits"}],
            },
        ),
    ),
    (
        "visits",
        klip(
            "pie",
            {"label": "page", "value": "visitors"},
            {
                "group_by": ["page"],
                "aggregate": [{"fn": "count_distinct", "column": "visitor", "as": "visitors"}],
            },
        ),
    ),
    (
        "visits",
        klip(
            "bar",
            {"x": "region", "y": "minutes"},
            {
                "filter": [{"column": "seconds", "op": "not_null"}],
                "compute": [{"as": "minutes", "expr": "seconds / 60"}],
                "group_by": ["region"],
                "aggregate": [{"fn": "median", "column": "minutes", "as": "minutes"}],
            },
        ),
    ),
    (
        "visits",
        klip(
            "table",
            {"fields": ["page", "long_visits"]},
            {
                "filter": [{"column": "seconds", "op": "gt", "value": 300}],
                "group_by": ["page"],
                "aggregate": [{"fn": "count", "as": "long_visits"}],
                "sort": [{"column": "long_visits", "desc": True}],
                "limit": 3,
            },
        ),
    ),
    # tickets
    (
        "tickets",
        klip(
            "bar",
            {"x": "opened", "y": "tickets"},
            {
                "group_by": [{"column": "opened", "bucket": "quarter"}],
                "aggregate": [{"fn": "count", "as": "tickets"}],
            },
        ),
    ),
    (
        "tickets",
        klip(
            "value",
            {"value": "hours"},
            {
                "filter": [{"column": "category", "op": "eq", "value": "bug"}],
                "aggregate": [{"fn": "median", "column": "hours", "as": "hours"}],
            },
        ),
    ),
    (
        "tickets",
        klip(
            "table",
            {"fields": ["category", "score", "slowest"]},
            {
                "group_by": ["category"],
                "aggregate": [
                    {"fn": "avg", "column": "score", "as": "score"},
                    {"fn": "max", "column": "hours", "as": "slowest"},
                ],
                "sort": [{"column": "score", "desc": True}],
            },
        ),
    ),
    (
        "tickets",
        klip(
            "line",
            {"x": "opened", "y": "days"},
            {
                "filter": [{"column": "region", "op": "eq", "value": "west"}],
                "compute": [{"as": "days", "expr": "coalesce(hours, 0) / 24"}],
                "group_by": [{"column": "opened", "bucket": "month"}],
                "aggregate": [{"fn": "sum", "column": "days", "as": "days"}],
            },
        ),
    ),
]


def draw(body: KlipBody, rows: Rows) -> str:
    """The klip drawn as the live page draws it, at the default size."""
    return svg.draw(body, "Klip", rows)


def _month(column: str) -> pl.Expr:
    return pl.col(column).str.slice(0, 10).str.to_date("%Y-%m-%d").dt.truncate("1mo").cast(pl.String)


def floor(sources: dict[str, Rows]) -> list[Rows]:
    """The 12 aggregations written by hand in polars, each source loaded once."""
    o = pl.DataFrame(sources["orders"])
    v = pl.DataFrame(sources["visits"])
    t = pl.DataFrame(sources["tickets"])
    o_day = o.with_columns(pl.col("day").str.to_date("%Y-%m-%d").alias("d"))
    v_day = v.with_columns(pl.col("at").str.slice(0, 10).str.to_date("%Y-%m-%d").alias("d"))
    t_day = t.with_columns(pl.col("opened").str.to_date("%Y-%m-%d").alias("d"))
    frames = [
        o.group_by(_month("day").alias("day")).agg(pl.col("amount").sum().alias("revenue")).sort("day"),
        o_day.filter(pl.col("d").is_between(date(2026, 1, 1), date(2026, 6, 30)))
        .group_by("category")
        .agg(pl.col("amount").sum().alias("revenue"))
        .sort("revenue", descending=True),
        o.filter(pl.col("region").is_in(["north", "east"])).select(
            pl.col("customer").n_unique().alias("customers")
        ),
        o.with_columns((pl.col("amount") / pl.col("units")).round(2).alias("price"))
        .group_by("region")
        .agg(pl.col("price").mean().alias("avg_price"), pl.col("price").median().alias("median_price"))
        .sort("region"),
        v_day.group_by(pl.col("d").dt.truncate("1w").cast(pl.String).alias("at"))
        .agg(pl.len().alias("visits"))
        .sort("at"),
        v.group_by("page").agg(pl.col("visitor").n_unique().alias("visitors")).sort("page"),
        v.filter(pl.col("seconds").is_not_null())
        .group_by("region")
        .agg((pl.col("seconds") / 60).median().alias("minutes"))
        .sort("region"),
        v.filter(pl.col("seconds") > 300)
        .group_by("page")
        .agg(pl.len().alias("long_visits"))
        .sort("long_visits", descending=True)
        .head(3),
        t_day.group_by(pl.col("d").dt.truncate("1q").cast(pl.String).alias("opened"))
        .agg(pl.len().alias("tickets"))
        .sort("opened"),
        t.filter(pl.col("category") == "bug").select(pl.col("hours").median()),
        t.group_by("category")
        .agg(pl.col("score").mean().alias("score"), pl.col("hours").max().alias("slowest"))
        .sort("score", descending=True),
        t.filter(pl.col("region") == "west")
        .group_by(_month("opened").alias("opened"))
        .agg((pl.col("hours").fill_null(0) / 24).sum().alias("days"))
        .sort("opened"),
    ]
    return [frame.to_dicts() for frame in frames]


def dashboard(cache: QueryCache, drawings: dict[tuple[str, str], str], sources: dict[str, Rows]) -> None:
    for source, body in KLIPS:
        table = cache.run(lambda source=source: sources[source], source, body.query)  # type: ignore[misc]
        key = (source, body.model_dump_json())
        if key not in drawings:
            drawings[key] = draw(body, table.rows)


def best_of(repeat: int, work: Callable[[], object]) -> float:
    return interleaved(repeat, work)[0]


def interleaved(repeat: int, *works: Callable[[], object]) -> list[float]:
    """Each work's best wall-clock time in ms, the works taking turns: on a machine others share,
    a busy moment then weighs on all of them alike."""
    timings: list[list[float]] = [[] for _ in works]
    for _ in range(repeat):
        for work, kept in zip(works, timings, strict=True):
            started = time.perf_counter()
            work()
            kept.append(time.perf_counter() - started)
    return [min(kept) * 1000 for kept in timings]


def engines(rows: Rows, repeat: int) -> None:
    """Turning one source's rows into each engine's table (the cold path's biggest part)."""
    from tenantry.klips.query import load

    print(f"polars (klips.query.load): {best_of(repeat, lambda: load(rows)):.0f} ms", file=sys.stderr)
    try:
        import duckdb  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print("duckdb: not installed", file=sys.stderr, flush=True)
        return

    def into_duckdb() -> None:
        # Without pyarrow or pandas, DuckDB reads Python rows fastest from a JSON file.
        handle, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(handle, "w") as out:
            json.dump(rows, out)
        connection = duckdb.connect()
        connection.execute(f"CREATE TABLE t AS SELECT * FROM read_json_auto('{path}')")
        os.unlink(path)

    print(f"duckdb (JSON file): {best_of(repeat, into_duckdb):.0f} ms", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    sources = {"orders": orders(rng), "visits": visits(rng), "tickets": tickets(rng)}
    if args.engines:
        engines(sources["orders"], args.repeat)

    def cold() -> None:
        dashboard(QueryCache(64), {}, sources)

    def floor_drawn() -> None:
        for (_, body), rows in zip(KLIPS, floor(sources), strict=True):
            draw(body, rows)

    loaded = QueryCache(64)
    dashboard(loaded, {}, sources)

    def queries_only() -> None:
        # Sources loaded, answers and drawings not cached: what a change of filter costs.
        loaded.answers.items.clear()
        dashboard(loaded, {}, sources)

    cache, drawings = QueryCache(64), {}  # type: ignore[var-annotated]
    dashboard(cache, drawings, sources)
    cold_ms, floor_ms = interleaved(args.repeat, cold, floor_drawn)
    queries_ms = best_of(args.repeat, queries_only)
    warm_ms = best_of(args.repeat * 20, lambda: dashboard(cache, drawings, sources))
    print(f"3 sources x {ROWS:,} rows, {len(KLIPS)} klips, best of {args.repeat}", file=sys.stderr)
    print(f"queries and drawings over loaded sources: {queries_ms:.0f} ms", file=sys.stderr, flush=True)
    ratio = cold_ms / floor_ms
    print(f"klips: cold {cold_ms:.0f} ms (floor {floor_ms:.0f} ms, ratio {ratio:.2f}) warm {warm_ms:.2f} ms")


if __name__ == "__main__":
    main()

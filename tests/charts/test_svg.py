"""Klips drawn as SVG: well-formed, self-contained, and honest about missing data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tenantry.charts.cache import SvgCache
from tenantry.charts.svg import render
from tests.content import ALL_KINDS, ROWS

NS = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("klip", ALL_KINDS, ids=[k["kind"] for k in ALL_KINDS])
def test_every_kind_draws_well_formed_svg_without_scripts_or_styles(klip):
    svg = render(klip["kind"], "<Sales & more>", ROWS, klip["columns"])
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg"
    assert not root.findall(f".//{NS}script") and not root.findall(f".//{NS}style")
    assert "<Sales & more>" in [t.text for t in root.iter(f"{NS}text")]


def test_a_value_klip_shows_the_last_rows_value():
    texts = [t.text for t in ET.fromstring(render("value", "T", ROWS, {"value": "sales"})).iter(f"{NS}text")]
    assert "150" in texts


def test_a_table_klip_shows_only_the_listed_fields():
    svg = render("table", "T", ROWS, {"fields": ["month"]})
    assert "Jan" in svg and "North" not in svg


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        ([], {"x": "month", "y": "sales"}, "No data yet"),
        (ROWS, {"x": "month", "y": "profit"}, "No column 'profit'"),
    ],
)
def test_missing_data_is_said_in_the_klip(rows, columns, message):
    texts = [t.text for t in ET.fromstring(render("bar", "T", rows, columns)).iter(f"{NS}text")]
    assert message in texts


def test_the_cache_keeps_the_most_recently_used_drawings():
    cache = SvgCache(capacity=2)
    drawn = []

    def draw(name):
        drawn.append(name)
        return name

    for key in ["a", "b", "a", "c", "a", "b"]:
        cache.get_or_draw(key, lambda key=key: draw(key))
    assert drawn == ["a", "b", "c", "b"]


def test_the_cache_keeps_its_drawings_within_its_budget_of_characters():
    cache = SvgCache(capacity=100, budget=10)
    for key in "abcd":
        cache.put(key, key * 4)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), cache.get("d")) == (None, None, "cccc", "dddd")
    assert cache.weight == 8
    cache.put("c", "c")  # replacing a drawing weighs the new one only
    assert cache.weight == 5
    cache.put("big", "x" * 50)  # the newest is kept whatever its size
    assert (cache.get("big"), cache.get("c"), cache.weight) == ("x" * 50, None, 50)

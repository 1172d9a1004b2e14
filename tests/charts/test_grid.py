"""A dashboard's klips on the 12-column grid (SPEC §13), on the page and in the exports."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tenantry.charts.grid import Cell, grid_html, place
from tenantry.klips.spec import Size

CSS = (Path(__file__).parents[2] / "src/tenantry/web/static/tenantry.css").read_text()


def cell(klip_id: int, w: int = 6, h: int = 2, kind: str = "bar", html: str | None = None) -> Cell:
    return Cell(klip_id, f"Klip <{klip_id}>", kind, Size(w=w, h=h), "<svg/>", html)


def test_an_empty_dashboard_says_so():
    assert grid_html([]) == '<p class="empty">This dashboard has no klips yet.</p>'


def test_each_klip_is_a_figure_spanning_its_size_in_order():
    root = ET.fromstring(grid_html([cell(3, 4, 1, "value"), cell(1, 12, 6), cell(2)]))
    assert root.get("class") == "klips grid"
    figures = list(root)
    assert [f.get("data-klip") for f in figures] == ["3", "1", "2"]
    assert figures[0].get("class") == "klip klip-value w-4 h-1"
    assert figures[1].get("class") == "klip klip-bar w-12 h-6"
    assert figures[0].get("aria-label") == "Klip <3>"
    assert figures[0].find("svg") is not None


def test_sizes_are_classes_since_the_pages_policy_refuses_inline_styles():
    html = grid_html([cell(1), cell(2, 3, 4)])
    assert "style=" not in html


def test_a_text_klip_holds_its_html_under_its_title():
    root = ET.fromstring(grid_html([cell(5, 3, 2, "text", "<p>Hello</p>")]))
    figure = root[0]
    assert figure.find("figcaption").text == "Klip <5>"
    assert figure.find("div/p").text == "Hello"
    assert figure.find("svg") is None


@pytest.mark.parametrize("w", range(1, 13))
def test_every_width_has_its_column_span(w):
    assert re.search(rf"\.klips\.grid > \.w-{w} {{ grid-column: span {w}; }}", CSS)


@pytest.mark.parametrize("h", range(1, 7))
def test_every_height_has_its_row_span(h):
    assert re.search(rf"\.klips\.grid > \.h-{h} {{ grid-row: span {h}; }}", CSS)


def test_the_grid_has_twelve_columns_and_stacks_on_a_narrow_screen():
    assert "grid-template-columns: repeat(12, minmax(0, 1fr))" in CSS
    narrow = CSS[CSS.index("@media (max-width: 700px)") :]
    assert ".klips.grid > .klip { grid-column: 1 / -1; grid-row: auto; }" in narrow[: narrow.index("\n}")]


@pytest.mark.parametrize(
    ("sizes", "spots"),
    [
        ([], []),
        ([(6, 2), (6, 2), (6, 2)], [(0, 0), (6, 0), (0, 2)]),
        ([(4, 1), (4, 1), (4, 1), (12, 1)], [(0, 0), (4, 0), (8, 0), (0, 1)]),
        # Beside a tall klip, the next ones fill the rows it spans, as CSS's auto-placement does.
        ([(3, 1), (6, 2), (3, 2), (12, 2)], [(0, 0), (3, 0), (9, 0), (0, 2)]),
        ([(6, 3), (6, 1), (6, 1), (6, 1)], [(0, 0), (6, 0), (6, 1), (6, 2)]),
        # A klip that does not fit the rest of a row starts the next one; the gap stays.
        ([(8, 1), (6, 1), (2, 1)], [(0, 0), (0, 1), (6, 1)]),
        ([(2, 2), (12, 1)], [(0, 0), (0, 2)]),
    ],
)
def test_klips_are_placed_left_to_right_as_a_css_grid_places_them(sizes, spots):
    assert place(sizes) == spots

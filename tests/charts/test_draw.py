"""SPEC §13's klips drawn: every kind in its grid cell's box, with nice axes, legends, hover
titles and a text alternative, lean enough for the page and for Typst."""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from tenantry.charts.svg import CELL_H, CELL_W, PALETTE, attention, box, draw, watermarked
from tenantry.klips.query import run
from tenantry.klips.spec import KlipBody, Size

NS = "{http://www.w3.org/2000/svg}"
ROWS = [
    {"month": "Jan", "region": "North", "sales": 120, "costs": 80},
    {"month": "Feb", "region": "South", "sales": 80, "costs": 60},
    {"month": "Mar", "region": "North", "sales": 150, "costs": 70},
]
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")


def klip(kind: str, **fields: Any) -> KlipBody:
    source = {} if kind == "text" else {"datasource_id": 1}
    return KlipBody.model_validate({"kind": kind, **source, **fields})


EVERY_KIND = {
    "value": klip("value", columns={"value": "sales"}, compare="previous_row", sparkline=True),
    "bar": klip("bar", columns={"x": "month"}, series=[{"column": "sales"}, {"column": "costs"}]),
    "line": klip("line", columns={"x": "month", "y": "sales"}),
    "area": klip("area", columns={"x": "month", "y": "sales"}),
    "pie": klip("pie", columns={"label": "region", "value": "sales"}),
    "donut": klip("donut", columns={"label": "region", "value": "sales"}),
    "table": klip("table", columns={"fields": ["month", "sales"]}),
    "gauge": klip("gauge", columns={"value": "sales"}, max=200, target=160),
    "text": klip("text", text="# Notes\n\nSales **rose** in March."),
}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{NS}text")]


def hovers(root: ET.Element, tag: str) -> list[str]:
    """The hover titles of every `tag` element that has one."""
    return [t.text or "" for shape in root.iter(f"{NS}{tag}") for t in shape.findall(f"{NS}title")]


def desc(root: ET.Element) -> str:
    found = root.find(f"{NS}desc")
    assert found is not None
    return found.text or ""


class TestEveryKind:
    @pytest.mark.parametrize("kind", list(EVERY_KIND))
    def test_every_kind_is_an_image_with_a_text_alternative(self, kind):
        root = parse(draw(EVERY_KIND[kind], "Sales & <more>", ROWS))
        assert root.get("role") == "img"
        assert root.get("aria-label") == "Sales & <more>"
        # Named once: a <title> beside the aria-label would be a second text to find.
        assert root.find(f"{NS}title") is None
        assert desc(root)
        assert "Sales & <more>" in texts(root)

    @pytest.mark.parametrize("kind", list(EVERY_KIND))
    def test_the_title_is_drawn_once_and_repeated_in_no_other_text(self, kind):
        # A page test finding the klip by its title finds one element.
        root = parse(draw(EVERY_KIND[kind], "Quarterly zebra", ROWS))
        assert [e.tag for e in root.iter() if "Quarterly zebra" in (e.text or "")] == [f"{NS}text"]

    @pytest.mark.parametrize("kind", list(EVERY_KIND))
    def test_every_kind_is_self_contained_with_presentation_attributes_only(self, kind):
        svg = draw(EVERY_KIND[kind], "T", ROWS)
        root = parse(svg)
        tags = {element.tag.removeprefix(NS) for element in root.iter()}
        assert not tags & {"script", "style", "foreignObject", "image", "use", "a"}
        attributes = {name for element in root.iter() for name in element.attrib}
        assert not {"style", "href", "{http://www.w3.org/1999/xlink}href", "class"} & attributes
        assert not any(name.startswith("on") for name in attributes)
        assert "url(" not in svg

    @pytest.mark.parametrize(
        ("size", "pixels"), [(Size(), (480, 240)), (Size(w=12, h=6), (960, 720)), (Size(w=1, h=1), (80, 120))]
    )
    @pytest.mark.parametrize("kind", list(EVERY_KIND))
    def test_every_kind_fills_the_box_of_its_size(self, kind, size, pixels):
        root = parse(
            draw(EVERY_KIND[kind], "A title long enough to be clipped in a small box", ROWS, size=size)
        )
        assert box(size) == pixels == (size.w * CELL_W, size.h * CELL_H)
        assert root.get("viewBox") == f"0 0 {pixels[0]} {pixels[1]}"

    @pytest.mark.parametrize("kind", list(EVERY_KIND))
    def test_the_setup_watermark_lies_over_every_kind(self, kind):
        size = Size(w=4, h=3)
        root = parse(watermarked(draw(EVERY_KIND[kind], "T", ROWS, size=size)))
        last = list(root)[-1]
        assert last.tag == f"{NS}g" and "".join(last.itertext()) == "SETUP MODE"
        # Centred on this box, not on the first edition's fixed one.
        assert last.get("transform").startswith(f"rotate(-24 {box(size)[0] / 2:.1f} ")

    def test_the_palette_is_okabe_and_itos_in_their_order(self):
        assert PALETTE[: len(OKABE_ITO)] == OKABE_ITO


class TestMissingData:
    @pytest.mark.parametrize("kind", [k for k in EVERY_KIND if k != "text"])
    def test_no_rows_says_no_data_yet(self, kind):
        assert "No data yet" in texts(parse(draw(EVERY_KIND[kind], "T", [])))

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (klip("bar", columns={"x": "month", "y": "profit"}), "No column 'profit'"),
            (klip("line", columns={"x": "day"}, series=[{"column": "sales"}]), "No column 'day'"),
            (klip("pie", columns={"label": "country", "value": "sales"}), "No column 'country'"),
            (klip("value", columns={"value": "profit"}), "No column 'profit'"),
            (klip("table", columns={"fields": ["month", "profit"]}), "No column 'profit'"),
            (klip("gauge", columns={"value": "profit"}), "No column 'profit'"),
        ],
    )
    def test_a_mapped_column_absent_from_the_rows_is_said(self, body, message):
        root = parse(draw(body, "T", ROWS))
        assert message in texts(root) and message in desc(root)

    def test_a_klip_whose_source_changed_asks_for_attention_with_the_reason(self):
        root = parse(attention("Revenue", "The column 'sales' is gone from the source.", Size(w=4, h=2)))
        shown = " ".join(texts(root))
        assert "Needs attention" in shown and "'sales' is gone" in shown
        assert root.get("aria-label") == "Revenue" and "Needs attention" in desc(root)
        assert root.get("viewBox") == "0 0 320 240"


class TestBars:
    def test_a_single_series_draws_one_bar_per_row_with_nice_ticks(self):
        root = parse(draw(klip("bar", columns={"x": "month", "y": "sales"}), "T", ROWS))
        assert hovers(root, "rect") == ["Jan: 120", "Feb: 80", "Mar: 150"]
        shown = texts(root)
        assert {"0", "50", "100", "150"} <= set(shown) and {"Jan", "Feb", "Mar"} <= set(shown)
        assert not any(re.fullmatch(r"\d+\.\d+", t) for t in shown)  # no 37.5 steps
        assert desc(root) == "Jan: 120; Feb: 80; Mar: 150"

    def test_several_series_are_side_by_side_with_a_legend(self):
        body = klip(
            "bar", columns={"x": "month"}, series=[{"column": "sales", "label": "Sales"}, {"column": "costs"}]
        )
        root = parse(draw(body, "T", ROWS))
        bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
        assert len(bars) == 6
        assert {"Sales", "costs"} <= set(texts(root))
        jan_sales, jan_costs = bars[0], bars[1]
        assert float(jan_costs.get("x")) > float(jan_sales.get("x"))
        assert jan_sales.get("fill") != jan_costs.get("fill")
        assert "Jan – Sales: 120" in desc(root)

    def test_stacked_bars_sit_on_one_another(self):
        body = klip(
            "bar", columns={"x": "month"}, series=[{"column": "sales"}, {"column": "costs"}], stacked=True
        )
        root = parse(draw(body, "T", ROWS))
        bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
        sales, costs = bars[0], bars[1]
        assert sales.get("x") == costs.get("x")
        assert float(costs.get("y")) + float(costs.get("height")) == pytest.approx(
            float(sales.get("y")), abs=0.2
        )
        # The axis covers the stack (120 + 80 = 200), not the tallest bar.
        assert "200" in texts(root)

    def test_horizontal_bars_grow_rightwards_from_their_labels(self):
        body = klip("bar", columns={"x": "month", "y": "sales"}, orientation="horizontal")
        root = parse(draw(body, "T", ROWS))
        bars = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
        widths = [float(b.get("width")) for b in bars]
        assert widths[2] > widths[0] > widths[1]
        assert len({b.get("height") for b in bars}) == 1
        labels = [t for t in root.iter(f"{NS}text") if t.text == "Jan"]
        assert labels[0].get("text-anchor") == "end"

    @pytest.mark.parametrize("w", [2, 3, 4, 6, 12])
    def test_horizontal_tick_labels_never_overlap(self, w):
        body = klip("bar", columns={"x": "month", "y": "sales"}, orientation="horizontal")
        root = parse(draw(body, "T", ROWS, size=Size(w=w, h=2)))
        ticks = [t for t in root.iter(f"{NS}text") if re.fullmatch(r"\d+", t.text or "")]
        assert len(ticks) >= 2 and len({t.get("y") for t in ticks}) == 1
        # Each label (~6px a character) ends before the next one starts; the last ends at its x.
        ends = []
        for t in ticks:
            width = len(t.text) * 6
            start = float(t.get("x")) - (width if t.get("text-anchor") == "end" else width / 2)
            ends.append((start, start + width))
        assert all(right < next_left for (_, right), (next_left, _) in itertools.pairwise(ends))

    def test_negative_values_hang_below_zero(self):
        rows = [{"m": "a", "v": -30}, {"m": "b", "v": 50}]
        root = parse(draw(klip("bar", columns={"x": "m", "y": "v"}), "T", rows))
        shown = texts(root)
        assert "0" in shown and any(t.startswith("-") for t in shown)

    def test_rows_sharing_an_x_are_summed(self):
        rows = [{"r": "North", "v": 1}, {"r": "North", "v": 2}, {"r": "South", "v": 4}]
        root = parse(draw(klip("bar", columns={"x": "r", "y": "v"}), "T", rows))
        assert hovers(root, "rect") == ["North: 3", "South: 4"]

    def test_values_are_shown_in_the_klips_format(self):
        body = klip("bar", columns={"x": "month", "y": "sales"}, format={"style": "currency"})
        root = parse(draw(body, "T", ROWS))
        assert "Jan: $120.00" in hovers(root, "rect")
        # Round ticks drop the cents.
        assert {"$0", "$50", "$100", "$150"} <= set(texts(root))

    @pytest.mark.parametrize(
        ("fmt", "labels"),
        [
            (None, {"0", "10M", "20M"}),
            ({"style": "currency"}, {"$0", "$10M", "$20M"}),
            ({"style": "number", "suffix": " kg"}, {"0 kg", "10M kg", "20M kg"}),
        ],
    )
    def test_tick_labels_too_long_for_a_small_box_turn_compact(self, fmt, labels):
        body = klip("bar", columns={"x": "m", "y": "v"}, format=fmt)
        rows = [{"m": "a", "v": 20_000_000}, {"m": "b", "v": 5_000_000}]
        root = parse(draw(body, "T", rows, size=Size(w=3, h=2)))
        assert labels <= set(texts(root))


class TestLines:
    def test_a_line_marks_each_point_with_its_value(self):
        root = parse(draw(klip("line", columns={"x": "month", "y": "sales"}), "T", ROWS))
        assert hovers(root, "circle") == ["Jan: 120", "Feb: 80", "Mar: 150"]
        assert len(root.findall(f".//{NS}polyline")) == 1

    def test_several_series_draw_several_lines_with_a_legend(self):
        body = klip(
            "line",
            columns={"x": "month"},
            series=[{"column": "sales"}, {"column": "costs", "label": "Costs"}],
        )
        root = parse(draw(body, "T", ROWS))
        lines = root.findall(f".//{NS}polyline")
        assert len(lines) == 2 and lines[0].get("stroke") != lines[1].get("stroke")
        assert {"sales", "Costs"} <= set(texts(root))

    def test_a_legend_too_long_for_the_box_counts_the_rest(self):
        rows = [{"x": "a", **{f"s{i}": i for i in range(10)}}]
        body = klip(
            "line",
            columns={"x": "x"},
            series=[{"column": f"s{i}", "label": f"Series {i}"} for i in range(10)],
        )
        root = parse(draw(body, "T", rows, size=Size(w=4, h=2)))
        counted = [t for t in texts(root) if t.startswith("+")]
        assert len(counted) == 1 and 1 <= int(counted[0][1:]) < 10
        assert all(f"Series {i}: {i}" in desc(root) for i in range(10))

    def test_many_x_labels_are_thinned(self):
        rows = [{"day": f"d{i}", "v": i} for i in range(200)]
        root = parse(draw(klip("line", columns={"x": "day", "y": "v"}), "T", rows))
        labels = [t for t in texts(root) if t.startswith("d")]
        assert 2 <= len(labels) <= 10
        assert "d0" in labels

    def test_a_long_series_stays_small(self):
        rows = [{"day": f"d{i}", "v": i % 17} for i in range(5000)]
        svg = draw(klip("line", columns={"x": "day", "y": "v"}), "T", rows, size=Size(w=12, h=3))
        assert len(svg) < 40_000

    def test_an_area_is_filled_beneath_its_line(self):
        root = parse(draw(klip("area", columns={"x": "month", "y": "sales"}), "T", ROWS))
        (area,) = root.findall(f".//{NS}polygon")
        assert area.get("fill") == PALETTE[0] and float(area.get("fill-opacity")) < 1


class TestPies:
    MANY = [{"name": f"n{i:02}", "v": 100 - i} for i in range(12)]

    def test_slices_beyond_eight_are_one_other_slice(self):
        root = parse(
            draw(klip("pie", columns={"label": "name", "value": "v"}), "T", self.MANY, size=Size(w=6, h=3))
        )
        slices = hovers(root, "path") + hovers(root, "circle")
        assert len(slices) == 9
        assert slices[-1].startswith("Other: 362 (")  # 92 + 91 + 90 + 89
        assert any(t.startswith("Other ") for t in texts(root))

    def test_the_legend_gives_each_slices_share(self):
        root = parse(draw(klip("pie", columns={"label": "region", "value": "sales"}), "T", ROWS))
        assert {"North 77%", "South 23%"} <= set(texts(root))
        assert desc(root) == "North: 270 (77%); South: 80 (23%)"

    def test_a_donut_shows_its_total_in_the_middle(self):
        body = klip("donut", columns={"label": "region", "value": "sales"}, format={"style": "currency"})
        root = parse(draw(body, "T", ROWS))
        assert "$350.00" in texts(root) and "Total: $350.00" in desc(root)

    def test_a_single_slice_is_a_whole_circle(self):
        root = parse(draw(klip("pie", columns={"label": "region", "value": "sales"}), "T", ROWS[:1]))
        assert hovers(root, "circle") == ["North: 120 (100%)"]


class TestTables:
    def test_a_table_shows_its_fields_in_the_given_order_with_their_formats(self):
        body = klip(
            "table",
            columns={
                "fields": ["region", "sales"],
                "formats": {"sales": {"style": "currency", "decimals": 0}},
            },
        )
        shown = texts(parse(draw(body, "T", ROWS)))
        assert shown[1:3] == ["region", "sales"]
        assert shown[3:] == ["North", "$120", "South", "$80", "North", "$150"]
        assert "month" not in shown

    def test_numbers_are_right_aligned_and_text_left_aligned(self):
        root = parse(draw(klip("table"), "T", ROWS))
        anchors = {t.text: t.get("text-anchor") for t in root.iter(f"{NS}text")}
        assert anchors["120"] == "end" and anchors["Jan"] == "start"

    def test_rows_beyond_the_box_are_counted(self):
        rows = [{"n": i} for i in range(100)]
        shown = texts(parse(draw(klip("table"), "T", rows, size=Size(w=6, h=2))))
        assert shown[-1] == f"+{100 - (len(shown) - 3):,} more rows"


class TestGauges:
    def test_a_gauge_shows_the_value_between_its_ends_and_its_target(self):
        root = parse(draw(EVERY_KIND["gauge"], "T", ROWS))
        shown = texts(root)
        assert {"150", "0", "200"} <= set(shown)
        assert hovers(root, "line") == ["Target: 160"]
        assert hovers(root, "path") == ["150 of 0 to 200"]
        assert desc(root) == "150 on a scale from 0 to 200, target 160"

    def test_a_scale_as_wide_as_floats_go_still_places_the_value(self):
        body = klip("gauge", columns={"value": "v"}, min=-1.7e308, max=1.7e308)
        root = parse(draw(body, "T", [{"v": 0.85e308}]))
        arc = next(p for p in root.iter(f"{NS}path") if p.find(f"{NS}title") is not None)
        track = next(p for p in root.iter(f"{NS}path") if p.find(f"{NS}title") is None)
        # Three quarters of the way: the arc ends right of the top, short of the track's end.
        end_x = float(arc.get("d").split()[-1].split(",")[0])
        assert 240 < end_x < float(track.get("d").split()[-1].split(",")[0])

    def test_a_value_beyond_the_scale_fills_the_arc_and_no_more(self):
        body = klip("gauge", columns={"value": "sales"}, min=0, max=100)
        root = parse(draw(body, "T", ROWS))
        arc = next(p for p in root.iter(f"{NS}path") if p.find(f"{NS}title") is not None)
        track = next(p for p in root.iter(f"{NS}path") if p.find(f"{NS}title") is None)
        assert arc.get("d") == track.get("d")


class TestValues:
    @pytest.mark.parametrize(
        ("compare", "rows", "previous", "change", "arrow", "against"),
        [
            ("previous_row", [{"v": 100}, {"v": 112.5}], None, "+12.5%", "▲", "vs previous row"),
            ("previous_row", [{"v": 200}, {"v": 150}], None, "-25.0%", "▼", "vs previous row"),
            ("previous_row", [{"v": 150}, {"v": 150}], None, "±0.0%", "", "vs previous row"),
            ("previous_row", [{"v": 0}, {"v": 30}], None, "+30", "▲", "vs previous row"),
            ("previous_row", [{"v": -50}, {"v": -25}], None, "+50.0%", "▲", "vs previous row"),
            ("previous_row", [{"v": 150}], None, "–", "", "no previous row"),
            ("previous_period", [{"v": 90}], 120.0, "-25.0%", "▼", "vs previous period"),
            ("previous_period", [{"v": 90}], None, "–", "", "no previous period"),
            ({"target": 100}, [{"v": 110}], None, "+10.0%", "▲", "vs target 100"),
            ({"target": 0}, [{"v": -4}], None, "-4", "▼", "vs target 0"),
        ],
    )
    def test_a_comparison_is_a_signed_change_with_its_direction(
        self, compare, rows, previous, change, arrow, against
    ):
        body = klip("value", columns={"value": "v"}, compare=compare)
        root = parse(draw(body, "T", rows, previous=previous))
        shown = texts(root)
        assert f"{arrow} {change}".strip() in shown
        assert against in shown
        assert f"{change} {against}" in desc(root)

    def test_a_rise_and_a_fall_differ_in_colour(self):
        colours = []
        for rows in ([{"v": 1}, {"v": 2}], [{"v": 2}, {"v": 1}]):
            root = parse(draw(klip("value", columns={"value": "v"}, compare="previous_row"), "T", rows))
            colours.append(next(t.get("fill") for t in root.iter(f"{NS}text") if (t.text or "")[:1] in "▲▼"))
        assert colours[0] != colours[1] and set(colours) <= set(PALETTE)

    def test_the_value_is_the_last_rows_in_the_klips_format(self):
        body = klip("value", columns={"value": "sales"}, format={"style": "compact", "prefix": "$"})
        rows = [{"sales": 1}, {"sales": 2_500_000}]
        assert "$2.5M" in texts(parse(draw(body, "T", rows)))

    def test_a_sparkline_draws_every_rows_value_under_the_number(self):
        with_line = parse(draw(EVERY_KIND["value"], "T", ROWS))
        (line,) = with_line.findall(f".//{NS}polyline")
        assert len(line.get("points").split()) == 3
        without = parse(draw(klip("value", columns={"value": "sales"}), "T", ROWS))
        assert not without.findall(f".//{NS}polyline")

    def test_a_value_that_is_not_a_number_is_shown_as_text(self):
        body = klip("value", columns={"value": "region"}, compare="previous_row")
        assert "North" in texts(parse(draw(body, "T", ROWS)))


class TestText:
    def test_headings_are_bold_and_larger_and_bold_words_bold(self):
        root = parse(draw(EVERY_KIND["text"], "T", []))
        heading = next(t for t in root.iter(f"{NS}text") if t.text == "Notes")
        body = next(t for t in root.iter(f"{NS}text") if "March" in "".join(t.itertext()))
        assert heading.get("font-weight") == "bold"
        assert float(heading.get("font-size")) > float(body.get("font-size"))
        (bold,) = body.findall(f"{NS}tspan")
        assert bold.text == "rose" and bold.get("font-weight") == "bold"

    def test_bullets_and_numbered_lists_keep_their_markers(self):
        root = parse(draw(klip("text", text="- one\n- two\n\n3. three\n4. four"), "T", []))
        assert {"• one", "• two", "3. three", "4. four"} <= set(texts(root))

    def test_raw_html_is_shown_as_text(self):
        root = parse(draw(klip("text", text="Hi <script>alert(1)</script> <b>there</b>"), "T", []))
        assert "Hi <script>alert(1)</script> <b>there</b>" in texts(root)
        assert not root.findall(f".//{NS}script")

    def test_paragraphs_wrap_to_the_box_and_long_text_ends_with_an_ellipsis(self):
        words = " ".join(f"word{i}" for i in range(400))
        root = parse(draw(klip("text", text=words), "T", [], size=Size(w=4, h=2)))
        lines = texts(root)[1:]
        assert len(lines) > 3 and lines[-1] == "…"
        assert all(len(line) <= 320 / 7 for line in lines)


MAX_FLOAT = 1.7976931348623157e308
NASTY_VALUES = [
    10**400,
    MAX_FLOAT,
    MAX_FLOAT,
    -MAX_FLOAT,
    -(10**200),
    -0.0,
    0.1,
    "1e999",
    "NaN",
    True,
    None,
    "x",
]


def nasty_rows() -> list[dict[str, Any]]:
    return [
        {"month": f"m\x00{i}\ud800", "region": f"r{i % 3}\x1b", "sales": value, "costs": value}
        for i, value in enumerate(NASTY_VALUES)
    ]


NASTY_KINDS = {
    **EVERY_KIND,
    "stacked": klip(
        "bar", columns={"x": "month"}, series=[{"column": "sales"}, {"column": "costs"}], stacked=True
    ),
    "horizontal": klip("bar", columns={"x": "month", "y": "sales"}, orientation="horizontal"),
    "target": klip("value", columns={"value": "sales"}, compare={"target": -MAX_FLOAT}, sparkline=True),
    "gauge beyond": klip("gauge", columns={"value": "sales"}, min=-MAX_FLOAT, max=MAX_FLOAT, target=0),
    "compact": klip("line", columns={"x": "month", "y": "sales"}, format={"style": "compact"}),
}


@pytest.mark.parametrize("kind", list(NASTY_KINDS))
@pytest.mark.parametrize("order", ["as given", "reversed"])
def test_numbers_at_a_floats_limits_and_unsafe_text_still_draw_well_formed_finite_svg(kind, order):
    rows = nasty_rows() if order == "as given" else nasty_rows()[::-1]
    svg = draw(NASTY_KINDS[kind], "T\x00", rows, previous=-MAX_FLOAT)
    root = parse(svg)  # well-formed: no control characters, no lone surrogates
    numbers = [v for element in root.iter() for k, v in element.attrib.items() if k in NUMERIC_ATTRIBUTES]
    assert not [v for v in numbers if re.search(r"nan|inf", v, re.IGNORECASE)]


NUMERIC_ATTRIBUTES = {"x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "width", "height", "points", "d"}


class TestExactWholeNumbers:
    def test_a_table_of_large_ids_shows_each_id_as_it_is(self) -> None:
        rows = [{"order": 9007199254740993, "amount": 5}]
        body = klip("table", columns={"fields": ["order", "amount"]})
        assert desc(parse(draw(body, "Orders", rows))) == "order 9,007,199,254,740,993, amount 5"

    def test_a_value_klip_shows_a_128_bit_sum_with_its_own_digits(self) -> None:
        body = klip(
            "value",
            columns={"value": "total"},
            query={"aggregate": [{"fn": "sum", "column": "n", "as": "total"}]},
        )
        answer = run([{"n": 999999999999999999}] * 10, body.query).rows
        assert answer == [{"total": 9999999999999999990}]
        assert desc(parse(draw(body, "Total", answer))) == "9,999,999,999,999,999,990"

    def test_a_value_klip_whose_average_rounds_to_zero_cents_shows_no_minus(self) -> None:
        body = klip(
            "value",
            columns={"value": "avg"},
            format={"style": "currency"},
            query={"aggregate": [{"fn": "avg", "column": "refund", "as": "avg"}]},
        )
        answer = run([{"refund": -0.01}, {"refund": 0.0}, {"refund": 0.005}], body.query).rows
        assert desc(parse(draw(body, "Average refund", answer))) == "$0.00"


NULL_KEYED = [{"region": "north", "v": 3}, {"region": None, "v": 2}, {"region": "south", "v": 1}]
BY_REGION = {"group_by": ["region"], "aggregate": [{"fn": "sum", "column": "v", "as": "total"}]}


@pytest.mark.parametrize(
    ("kind", "columns", "expected"),
    [
        ("bar", {"x": "region", "y": "total"}, "north: 3; south: 1; –: 2"),
        ("line", {"x": "region", "y": "total"}, "north: 3; south: 1; –: 2"),
        ("pie", {"label": "region", "value": "total"}, "north: 3 (50%); –: 2 (33%); south: 1 (17%)"),
    ],
)
def test_a_chart_labels_the_group_of_null_keys_as_a_table_does_not_as_none(
    kind: str, columns: dict[str, str], expected: str
) -> None:
    body = klip(kind, columns=columns, query=BY_REGION)
    drawn = draw(body, "Sales", run(NULL_KEYED, body.query).rows)
    assert desc(parse(drawn)) == expected
    assert "None" not in texts(parse(drawn)) + hovers(parse(drawn), "rect") + hovers(parse(drawn), "path")

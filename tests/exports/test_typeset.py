"""The one Typst template, driven directly."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from pypdf import PdfReader

from tenantry.charts.svg import draw, render, watermarked
from tenantry.exports import typeset
from tenantry.exports.typeset import Typesetter, laid_out
from tenantry.klips.spec import KlipBody, Size
from tests.content import ROWS


def test_a_real_clock_instant_with_microseconds_is_accepted_as_the_creation_date():
    klip = ("Total", render("value", "Total", ROWS, {"value": "sales"}))
    data = Typesetter().typeset(
        "pdf",
        title="Sales",
        subtitle="now",
        klips=[klip],
        timestamp=datetime(2026, 3, 10, 12, 0, 0, 123456, tzinfo=UTC),
    )
    reader = PdfReader(io.BytesIO(data))
    assert "150" in reader.pages[0].extract_text()


def test_an_empty_dashboard_still_typesets_one_page():
    data = Typesetter().typeset("png", title="Empty", subtitle="", klips=[])
    assert data.startswith(b"\x89PNG")


MIXED = [
    (
        "Revenue total",
        KlipBody(kind="value", datasource_id=1, columns={"value": "sales"}, compare="previous_row"),
        3,
        1,
    ),
    ("Sales by month", KlipBody(kind="bar", datasource_id=1, columns={"x": "month", "y": "sales"}), 6, 2),
    (
        "Regions stacked",
        KlipBody(
            kind="bar",
            datasource_id=1,
            columns={"x": "region", "y": "sales"},
            stacked=True,
            orientation="horizontal",
        ),
        3,
        2,
    ),
    ("Monthly trend", KlipBody(kind="line", datasource_id=1, columns={"x": "month", "y": "sales"}), 12, 2),
    ("Filled trend", KlipBody(kind="area", datasource_id=1, columns={"x": "month", "y": "sales"}), 4, 3),
    (
        "Region share",
        KlipBody(kind="pie", datasource_id=1, columns={"label": "region", "value": "sales"}),
        4,
        2,
    ),
    (
        "Region ring",
        KlipBody(kind="donut", datasource_id=1, columns={"label": "region", "value": "sales"}),
        4,
        2,
    ),
    (
        "All rows",
        KlipBody(kind="table", datasource_id=1, columns={"formats": {"sales": {"style": "currency"}}}),
        8,
        2,
    ),
    (
        "Quota gauge",
        KlipBody(kind="gauge", datasource_id=1, columns={"value": "sales"}, target=120, max=200),
        2,
        2,
    ),
    ("Read me", KlipBody(kind="text", text="## Notes\n\n- **Bold** point\n- <i>raw</i>"), 2, 1),
]


def mixed_klips(mark=str) -> list[tuple[str, str, int, int]]:
    return [(t, mark(draw(b, t, ROWS, size=Size(w=w, h=h))), w, h) for t, b, w, h in MIXED]


def test_a_dashboard_of_every_kind_in_mixed_sizes_typesets_every_klip_title():
    data = Typesetter().typeset("pdf", title="Board", subtitle="now", klips=mixed_klips())
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    for title, *_ in MIXED:
        assert title in text
    assert "$120.00" in text and "Bold" in text and "<i>raw</i>" in text


def test_the_watermark_is_in_the_pdf_over_every_kind():
    data = Typesetter().typeset("pdf", title="Board", subtitle="now", klips=mixed_klips(watermarked))
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert text.count("SETUP MODE") == len(MIXED)


def test_a_png_of_mixed_sizes_is_one_page_as_wide_as_the_pdf():
    data = Typesetter().typeset("png", title="Board", subtitle="now", klips=mixed_klips())
    image = Image.open(io.BytesIO(data))
    # 297 mm at 110 ppi; every klip on the one page, so it runs taller than a sheet.
    assert image.width == round(297 / 25.4 * 110)
    assert image.height > image.width


def test_klips_given_without_a_size_take_half_the_width_two_rows_high():
    svg = render("value", "Total", ROWS, {"value": "sales"})
    assert laid_out([("A", svg), ("B", svg), ("C", svg)]) == [
        {"title": "A", "svg": svg, "w": 6, "h": 2, "x": 0, "y": 0},
        {"title": "B", "svg": svg, "w": 6, "h": 2, "x": 6, "y": 0},
        {"title": "C", "svg": svg, "w": 6, "h": 2, "x": 0, "y": 2},
    ]


def test_klips_are_placed_in_the_pages_order_and_out_of_range_sizes_are_clamped():
    laid = laid_out([("wide", "<svg/>", 40, 9), ("small", "<svg/>", 0, 0), ("half", "<svg/>", 6, 2)])
    assert [(k["w"], k["h"], k["x"], k["y"]) for k in laid] == [(12, 6, 0, 0), (1, 1, 0, 6), (6, 2, 1, 6)]


def test_the_template_places_each_klip_on_its_spot_spanning_its_size():
    template = (Path(typeset.__file__).with_name("dashboard.typ")).read_text()
    assert "columns: (1fr,) * 12" in template
    assert all(f"{field}: k.{field}" in template for field in ("x", "y"))
    assert "colspan: k.w" in template and "rowspan: k.h" in template


def test_the_tallest_klip_fits_on_the_first_pdf_page_under_the_heading():
    body = KlipBody(kind="bar", datasource_id=1, columns={"x": "month", "y": "sales"})
    klips = [("Huge one", draw(body, "Huge one", ROWS, size=Size(w=12, h=6)), 12, 6)]
    reader = PdfReader(io.BytesIO(Typesetter().typeset("pdf", title="Board", subtitle="now", klips=klips)))
    assert len(reader.pages) == 1
    assert "Board" in reader.pages[0].extract_text() and "Huge one" in reader.pages[0].extract_text()

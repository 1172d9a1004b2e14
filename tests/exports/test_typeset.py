"""The one Typst template, driven directly."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from tenantry.charts.svg import render
from tenantry.exports.typeset import Typesetter
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

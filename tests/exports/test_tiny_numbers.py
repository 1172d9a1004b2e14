"""Charts over the smallest numbers a float holds (subnormals: 5e-324, or "1e-320" from a
spreadsheet) draw like any other (SPEC §12: "Data values never break a page or a file"), in the
builder's preview and in an export."""

from __future__ import annotations

import pytest

from tests.content import create_dashboard, inline_source, make_client, pdf_text

TINY = 5e-324
ROWS = [{"month": "Jan", "sales": TINY}]


@pytest.mark.parametrize("kind", ["bar", "line", "area"])
def test_the_builder_preview_of_a_chart_over_a_tiny_value_does_not_answer_500(http, partner, kind):
    source_id = inline_source(http, partner, None, ROWS)
    response = http.post(
        "/api/1/klips/preview",
        json={"kind": kind, "datasource_id": source_id, "columns": {"x": "month", "y": "sales"}},
        headers=partner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["svg"].startswith("<svg")


def test_a_gauge_whose_max_is_tiny_previews_without_500(http, partner):
    source_id = inline_source(http, partner, None, ROWS)
    response = http.post(
        "/api/1/klips/preview",
        json={
            "kind": "gauge",
            "datasource_id": source_id,
            "columns": {"value": "sales"},
            "min": 0,
            "max": TINY,
        },
        headers=partner.headers,
    )
    assert response.status_code == 200, response.text


def test_the_pdf_draws_a_chart_over_a_tiny_value_instead_of_a_could_not_be_drawn_card(http, partner):
    client_id = make_client(http, partner, "setup")
    source_id = inline_source(http, partner, client_id, ROWS)
    klips = [{"title": "By month", "kind": "bar", "columns": {"x": "month", "y": "sales"}}]
    response = create_dashboard(http, partner, client_id, source_id, klips=klips)
    assert response.status_code == 201, response.text
    export = http.get(f"/api/1/dashboards/{response.json()['id']}/export?format=pdf", headers=partner.headers)
    assert export.status_code == 200
    text = pdf_text(export.content)
    assert "could not be drawn" not in text
    assert "Jan" in text

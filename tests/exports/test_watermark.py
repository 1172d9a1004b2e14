"""SPEC §12 "Setup watermark": drawn over every klip — semi-transparent, on top, legible on a full
bar, a pie and a single value — in the PDF, the PNG, the e-mail, and the live view a partner sees
signed in as a Setup client; in no other status.

The PNG checks compare a Setup render with the Trial render of the same dashboard: where the
Trial render shows the chart's own colour (the bar, the pie, the value's digits), the Setup render
must show the watermark's red — it is drawn on the chart, not hidden beneath it."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from tests.content import (
    WATERMARK,
    create_dashboard,
    inline_source,
    is_watermark_red,
    make_client,
    move_to,
    pdf_text,
)
from tests.factories import ADMIN_PASSWORD, enter, sign_in

CHART_ORANGE = (230, 159, 0)  # the first colour of the palette: a single bar, a whole pie
VALUE_INK = (31, 41, 55)  # a value's digits
ONE_ROW = [{"region": "All", "sales": 1_234_567}]
FULL_BAR = {"title": "Full bar", "kind": "bar", "columns": {"x": "region", "y": "sales"}}
WHOLE_PIE = {"title": "Whole pie", "kind": "pie", "columns": {"label": "region", "value": "sales"}}
VALUE = {"title": "Revenue", "kind": "value", "columns": {"value": "sales"}}


def one_klip_dashboard(http, partner, clock, status: str, klip: dict) -> int:
    client_id = make_client(http, partner, "setup")
    source_id = inline_source(http, partner, client_id, ONE_ROW)
    response = create_dashboard(http, partner, client_id, source_id, klips=[klip], name="Board")
    assert response.status_code == 201, response.text
    move_to(http, partner, client_id, status, clock)
    return int(response.json()["id"])


def export(http, partner, dashboard_id: int, fmt: str) -> bytes:
    response = http.get(f"/api/1/dashboards/{dashboard_id}/export?format={fmt}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.content


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize(
    ("klip", "colour", "least"),
    # How many pixels of the chart's colour must turn watermark red: most of the lettering lies
    # on a full bar or a whole pie; on a value, where the letters cross the digits.
    [(FULL_BAR, CHART_ORANGE, 2_000), (WHOLE_PIE, CHART_ORANGE, 1_500), (VALUE, VALUE_INK, 150)],
    ids=["full bar", "whole pie", "single value"],
)
def test_the_png_watermark_lies_on_top_of_the_chart(http, partner, clock, klip, colour, least):
    setup = Image.open(
        io.BytesIO(export(http, partner, one_klip_dashboard(http, partner, clock, "setup", klip), "png"))
    )
    trial = Image.open(
        io.BytesIO(export(http, partner, one_klip_dashboard(http, partner, clock, "trial", klip), "png"))
    )
    assert setup.size == trial.size
    setup_pixels = list(setup.convert("RGB").get_flattened_data())
    trial_pixels = list(trial.convert("RGB").get_flattened_data())
    chart = [i for i, p in enumerate(trial_pixels) if near(p, colour)]
    assert len(chart) > 1_000  # the chart itself is there to be covered
    covered = [i for i in chart if is_watermark_red(*setup_pixels[i])]
    assert len(covered) >= least
    # Semi-transparent and on top only where it is drawn: most of the chart still shows.
    assert sum(1 for i in chart if near(setup_pixels[i], colour)) > len(chart) / 2
    # Nothing of the watermark in Trial.
    assert not any(is_watermark_red(*p) for p in trial_pixels)


def test_the_pdf_carries_the_watermark_as_text_on_every_klip_only_in_setup(http, partner, clock):
    klips = [FULL_BAR, WHOLE_PIE, VALUE]
    for status, expected in (("setup", 3), ("trial", 0), ("active", 0)):
        client_id = make_client(http, partner, "setup")
        source_id = inline_source(http, partner, client_id, ONE_ROW)
        board = create_dashboard(http, partner, client_id, source_id, klips=klips, name="Board").json()["id"]
        move_to(http, partner, client_id, status, clock)
        assert pdf_text(export(http, partner, board, "pdf")).count(WATERMARK) == expected, status


def klip_figures(page: str) -> list[str]:
    return re.findall(r'<figure class="klip.*?</figure>', page, flags=re.S)


def on_top_of_each(figures: list[str]) -> bool:
    """The watermark is the last thing drawn in each klip's SVG."""
    return all(re.search(rf"<text[^>]*>{WATERMARK}</text></g></svg></figure>$", f) for f in figures)


@pytest.mark.usefixtures("partner_session")
class TestTheLiveView:
    def test_signed_in_as_a_setup_client_every_klip_is_watermarked_on_top(self, http, partner, clock):
        client_id = make_client(http, partner, "setup")
        source_id = inline_source(http, partner, client_id, ONE_ROW)
        klips = [FULL_BAR, WHOLE_PIE, VALUE]
        board = create_dashboard(http, partner, client_id, source_id, klips=klips, name="Board").json()["id"]
        enter(http, client_id)
        page = http.get(f"/app/dashboards/{board}")
        assert page.status_code == 200
        figures = klip_figures(page.text)
        assert len(figures) == 3 and on_top_of_each(figures)
        poll = http.get(f"/app/dashboards/{board}/live").json()
        assert on_top_of_each(klip_figures(poll["html"])) and len(klip_figures(poll["html"])) == 3

    @pytest.mark.parametrize("status", ["trial", "trial_expired", "active", "disabled"])
    def test_in_any_other_status_the_live_view_has_no_watermark(self, http, partner, clock, status):
        client_id = make_client(http, partner, "setup")
        source_id = inline_source(http, partner, client_id, ONE_ROW)
        board = create_dashboard(http, partner, client_id, source_id, klips=[FULL_BAR]).json()["id"]
        move_to(http, partner, client_id, status, clock)
        if status == "trial_expired":  # sessions last hours: sign in again after the clock moved
            email = http.get("/api/1/me", headers=partner.headers).json()["user"]["email"]
            sign_in(http, email, ADMIN_PASSWORD)
        enter(http, client_id)
        page = http.get(f"/app/dashboards/{board}")
        assert page.status_code == 200
        assert len(klip_figures(page.text)) == 1 and WATERMARK not in page.text

    def test_an_open_page_drops_the_watermark_when_the_client_leaves_setup(self, http, partner, clock):
        client_id = make_client(http, partner, "setup")
        source_id = inline_source(http, partner, client_id, ONE_ROW)
        board = create_dashboard(http, partner, client_id, source_id, klips=[FULL_BAR]).json()["id"]
        enter(http, client_id)
        page = http.get(f"/app/dashboards/{board}").text
        version = re.search(r'data-version="([^"]+)"', page).group(1)
        assert WATERMARK in page
        move_to(http, partner, client_id, "trial", clock)
        poll = http.get(f"/app/dashboards/{board}/live?v={version}").json()
        assert poll["version"] != version and WATERMARK not in poll["html"]


def test_the_partners_own_dashboards_are_never_watermarked(http, partner):
    source_id = inline_source(http, partner, None, ONE_ROW)
    board = create_dashboard(http, partner, None, source_id, klips=[FULL_BAR]).json()["id"]
    assert WATERMARK not in pdf_text(export(http, partner, board, "pdf"))

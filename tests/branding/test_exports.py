"""PDF and PNG exports in the partner's brand (SPEC §16): the product name and logo in the header,
the primary colour as the first series colour, and no drawing shared in the wrong colour."""

from __future__ import annotations

import io

from PIL import Image

from tenantry.branding import Brand, recolour
from tenantry.charts.svg import PALETTE
from tests.branding.images import png
from tests.content import dashboard_in, pdf_text

BRANDING = "/api/1/partner/branding"


def export(http, partner, dashboard_id, fmt):
    response = http.get(f"/api/1/dashboards/{dashboard_id}/export?format={fmt}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.content


def brand(http, partner, **fields):
    assert http.patch(BRANDING, json=fields, headers=partner.headers).status_code == 200


def colours(data: bytes) -> set[tuple[int, int, int]]:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return {colour for _, colour in image.getcolors(maxcolors=1_000_000)}


class TestExports:
    def test_a_pdf_names_the_partner_s_product(self, http, partner, clock):
        brand(http, partner, product_name="Acme Insights", primary_color="#aa3300")
        _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        text = pdf_text(export(http, partner, dashboard_id, "pdf"))
        assert "Acme Insights" in text and "Tenantry" not in text

    def test_an_unbranded_pdf_names_the_product_itself(self, http, partner, clock):
        _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        assert "Tenantry" in pdf_text(export(http, partner, dashboard_id, "pdf"))

    def test_a_png_draws_the_first_series_in_the_primary_colour(self, http, partner, clock):
        _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        first = tuple(int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5))
        assert first in colours(export(http, partner, dashboard_id, "png"))
        brand(http, partner, primary_color="#00ff7f")
        branded = colours(export(http, partner, dashboard_id, "png"))
        assert (0, 255, 127) in branded and first not in branded

    def test_the_logo_is_in_the_export(self, http, partner, clock):
        _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        put = http.put(
            "/api/1/partner/branding/logo",
            content=png(200, 60, colour=(12, 200, 240)),
            headers={**partner.headers, "Content-Type": "image/png"},
        )
        assert put.status_code == 200
        assert (12, 200, 240) in colours(export(http, partner, dashboard_id, "png"))

    def test_two_partners_exports_never_share_a_drawing_in_the_wrong_colour(
        self, http, partner, make_partner, clock
    ):
        other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        brand(http, partner, product_name="Alpha Co", primary_color="#00ff7f")
        brand(http, other, product_name="Beta Co", primary_color="#7f00ff")
        _, _, mine = dashboard_in(http, partner, "active", clock)
        _, _, theirs = dashboard_in(http, other, "active", clock)
        for _ in range(2):  # the second time from the drawings' cache
            alpha = colours(export(http, partner, mine, "png"))
            beta = colours(export(http, other, theirs, "png"))
            assert (0, 255, 127) in alpha and (127, 0, 255) not in alpha
            assert (127, 0, 255) in beta and (0, 255, 127) not in beta
            assert "Beta Co" not in pdf_text(export(http, partner, mine, "pdf"))


class TestRecolouring:
    def test_only_attributes_change_never_text(self):
        text = f"<text>fill=&quot;{PALETTE[0]}&quot;</text>"
        svg = f'<rect fill="{PALETTE[0]}"/><path stroke="{PALETTE[0]}"/>{text}'
        out = recolour(svg, Brand(primary_color="#123456"))
        assert out == f'<rect fill="#123456"/><path stroke="#123456"/>{text}'

    def test_the_product_s_own_brand_keeps_the_palette(self):
        svg = f'<rect fill="{PALETTE[0]}"/>'
        assert recolour(svg, Brand()) is svg

"""SPEC §12 "Setup watermark: drawn over every klip (semi-transparent, on top, legible …)": the
words SETUP MODE are whole on every klip size the grid allows, not cut off by the klip's frame. On
a wide, low klip (w 12, h 1) they lie flatter and a little smaller than on a tall one, rather than
turned by 24° at the size the width alone asks for, which left "UP MO" of them."""

from __future__ import annotations

import io

from PIL import Image

from tests.content import is_watermark_red, make_client


def red_pixels(data: bytes) -> int:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return sum(1 for r, g, b in image.get_flattened_data() if is_watermark_red(r, g, b))


def png_of_one_text_klip(http, partner, client_id: int, w: int, h: int) -> bytes:
    klips = [{"title": "N", "kind": "text", "text": ".", "size": {"w": w, "h": h}}]
    path = f"/api/1/clients/{client_id}/dashboards"
    response = http.post(
        path,
        json={"name": f"Board {w}x{h}", "klips": klips},
        headers=partner.headers,
    )
    assert response.status_code == 201, response.text
    export = http.get(f"/api/1/dashboards/{response.json()['id']}/export?format=png", headers=partner.headers)
    assert export.status_code == 200, export.text
    return export.content


def test_the_whole_watermark_shows_on_a_wide_low_klip_too(http, partner):
    client_id = make_client(http, partner, "setup")
    # Both drawings are 960 px wide, so both carry the same watermark, drawn at nearly the same
    # scale in the PNG (a 12×1 cell scales its drawing ~5% smaller than a 12×6 one).
    low = red_pixels(png_of_one_text_klip(http, partner, client_id, 12, 1))
    tall = red_pixels(png_of_one_text_klip(http, partner, client_id, 12, 6))
    assert tall > 2000
    # Cut off by the frame, a third of the tall klip's watermark showed (34%); whole, flat and at 78
    # px against 86 px, it shows 62% as many red pixels.
    assert low / tall > 0.5, f"only {low / tall:.0%} of the watermark is visible on a 12×1 klip"

"""GET|PATCH /api/1/partner/branding and the logo endpoints (SPEC §16): who may change what, what
is refused, and that a refused request changes nothing."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime

import pytest
from PIL import Image
from sqlalchemy import select

from tenantry.db.branding_models import Branding, BrandLogo, ClientLogo
from tenantry.db.models import AuditEvent
from tests.branding.images import SVG, big_noise_png, bomb, gif, jpeg, png, png_header_with_garbage
from tests.factories import client_with_user, new_client

BRANDING = "/api/1/partner/branding"
LOGO = "/api/1/partner/branding/logo"


def client_logo(client_id: int) -> str:
    return f"/api/1/clients/{client_id}/branding/logo"


def put_image(http, path, headers, data, content_type="image/png"):
    return http.put(path, content=data, headers={**headers, "Content-Type": content_type})


class TestReadingAndChangingTheBrand:
    def test_a_partner_without_branding_reads_the_product_s_own_brand(self, http, partner):
        body = http.get(BRANDING, headers=partner.headers).json()
        assert body["product_name"] == "Tenantry"
        assert body["primary_color"] == "#1f4e79"
        assert body["logo_url"] is None and body["updated_at"] is None

    def test_an_admin_sets_every_field_and_reads_it_back(self, http, partner):
        fields = {
            "product_name": "  Acme Insights ",
            "primary_color": "#AA3300",
            "accent_color": "#00aa88",
            "email_from_name": "Acme Reports",
            "support_email": "Help@Acme.test",
            "footer_text": "Acme Ltd · 1 Main St",
        }
        response = http.patch(BRANDING, json=fields, headers=partner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["product_name"] == "Acme Insights"
        assert (body["primary_color"], body["accent_color"]) == ("#aa3300", "#00aa88")
        assert body["support_email"] == "help@acme.test"
        assert body["footer_text"] == "Acme Ltd · 1 Main St"
        assert body["updated_at"] is not None
        assert http.get(BRANDING, headers=partner.headers).json() == body

    def test_optional_fields_are_removed_with_null_and_required_ones_cannot_be(self, http, partner):
        http.patch(
            BRANDING, json={"footer_text": "Old footer", "accent_color": "#123456"}, headers=partner.headers
        )
        body = http.patch(
            BRANDING, json={"footer_text": None, "accent_color": ""}, headers=partner.headers
        ).json()
        assert body["footer_text"] is None and body["accent_color"] is None
        refused = http.patch(BRANDING, json={"product_name": None}, headers=partner.headers)
        assert refused.status_code == 422

    def test_each_change_is_audited(self, http, partner, db):
        http.patch(BRANDING, json={"product_name": "Acme"}, headers=partner.headers)
        events = db.scalars(select(AuditEvent).where(AuditEvent.action == "branding.updated")).all()
        assert [e.details for e in events] == [{"product_name": "Acme"}]

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("primary_color", "red"),
            ("primary_color", "#12345"),
            ("primary_color", "#1234567"),
            ("primary_color", "#12345g"),
            ("primary_color", "#123456;}body{x:y"),
            ("primary_color", "#123456\n"),
            ("accent_color", "rgb(1,2,3)"),
            ("product_name", ""),
            ("product_name", "   "),
            ("product_name", "x" * 101),
            ("product_name", "Acme\u2028Evil"),
            ("email_from_name", "Acme\r\nBcc: x@evil.test"),
            ("footer_text", "a\x07b"),
            ("footer_text", "y" * 501),
            ("support_email", "not an address"),
            ("support_email", "a@b.test, c@d.test"),
            ("logo_url", "/brand/logo/x.png"),
        ],
    )
    def test_a_malformed_field_is_refused_naming_it_and_changes_nothing(
        self, http, partner, db, field, value
    ):
        response = http.patch(BRANDING, json={field: value}, headers=partner.headers)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert field in response.json()["detail"]
        assert db.scalars(select(Branding)).all() == []

    @pytest.mark.parametrize("role", ["editor", "viewer"])
    def test_only_an_admin_changes_the_brand_and_every_partner_user_reads_it(
        self, http, partner, add_partner_user, db, role
    ):
        headers = add_partner_user(partner, role)
        refused = http.patch(BRANDING, json={"product_name": "Mine"}, headers=headers)
        assert refused.status_code == 403
        assert put_image(http, LOGO, headers, png()).status_code == 403
        assert http.get(BRANDING, headers=headers).status_code == 200
        assert db.scalars(select(Branding)).all() == []

    def test_a_client_key_neither_reads_nor_changes_the_partner_s_brand(self, http, partner, clock, db):
        _, _, headers = client_with_user(http, partner, clock, "trial", "boss@client.test")
        assert http.get(BRANDING, headers=headers).status_code == 403
        assert http.patch(BRANDING, json={"product_name": "Mine"}, headers=headers).status_code == 403
        assert put_image(http, LOGO, headers, png()).status_code == 403
        assert http.delete(LOGO, headers=headers).status_code == 403
        assert db.scalars(select(Branding)).all() == []

    def test_an_anonymous_request_is_refused_and_stores_nothing(self, http, db):
        assert http.patch(BRANDING, json={"product_name": "Mine"}).status_code == 401
        assert put_image(http, LOGO, {}, png()).status_code == 401
        assert db.scalars(select(BrandLogo)).all() == []


class TestThePartnerLogo:
    def test_a_png_is_re_encoded_served_by_its_hash_and_cached_for_good(self, http, partner):
        response = put_image(http, LOGO, partner.headers, png(300, 100))
        assert response.status_code == 200, response.text
        url = response.json()["logo_url"]
        assert http.get(BRANDING, headers=partner.headers).json()["logo_url"] == url
        served = http.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/png"
        assert "immutable" in served.headers["cache-control"]
        assert served.headers["x-content-type-options"] == "nosniff"
        assert url == f"/brand/logo/{hashlib.sha256(served.content).hexdigest()}.png"
        assert Image.open(io.BytesIO(served.content)).size == (300, 100)

    def test_a_jpeg_becomes_a_png_without_its_metadata(self, http, partner):
        exif = Image.Exif()
        exif[0x010E] = "secret camera notes"  # ImageDescription
        response = put_image(http, LOGO, partner.headers, jpeg(exif=exif.tobytes()), "image/jpeg")
        assert response.status_code == 200, response.text
        served = http.get(response.json()["logo_url"]).content
        image = Image.open(io.BytesIO(served))
        assert image.format == "PNG"
        assert b"secret camera notes" not in served
        assert not image.getexif()

    def test_a_tall_logo_is_scaled_down_to_256_pixels_high(self, http, partner):
        response = put_image(http, LOGO, partner.headers, png(1000, 1000))
        assert (response.json()["width"], response.json()["height"]) == (256, 256)

    def test_removing_the_logo_leaves_the_rest_of_the_brand(self, http, partner):
        http.patch(BRANDING, json={"product_name": "Acme"}, headers=partner.headers)
        put_image(http, LOGO, partner.headers, png())
        assert http.delete(LOGO, headers=partner.headers).status_code == 204
        body = http.get(BRANDING, headers=partner.headers).json()
        assert body["logo_url"] is None and body["product_name"] == "Acme"

    @pytest.mark.parametrize(
        ("name", "data", "status"),
        [
            ("svg", SVG, 422),
            ("gif", gif(), 422),
            ("empty", b"", 422),
            ("png header with garbage", png_header_with_garbage(), 422),
            ("truncated png", png(400, 400)[:300], 422),
            ("5000x10", png(5000, 10), 422),
            ("10x5000", png(10, 5000), 422),
            ("decompression bomb", bomb(), 422),
            ("zip archive", b"PK\x03\x04" + b"\x00" * 100, 422),
        ],
    )
    def test_anything_but_a_complete_png_or_jpeg_within_bounds_is_refused(
        self, http, partner, db, name, data, status
    ):
        response = put_image(http, LOGO, partner.headers, data)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "logo" in response.json()["detail"]
        assert db.scalars(select(BrandLogo)).all() == []
        assert db.scalars(select(Branding)).all() == []

    def test_a_logo_over_one_megabyte_is_refused_as_too_large(self, http, partner, db):
        response = put_image(http, LOGO, partner.headers, big_noise_png())
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"
        assert db.scalars(select(BrandLogo)).all() == []

    @pytest.mark.parametrize(
        "name", ["x.png", "../etc/passwd", "A" * 64 + ".png", "0" * 64 + ".png", "0" * 64]
    )
    def test_an_unknown_or_malformed_logo_address_is_not_found(self, http, name):
        assert http.get(f"/brand/logo/{name}").status_code == 404


class TestClientLogos:
    def test_a_partner_sets_and_removes_a_client_s_logo(self, http, partner, db):
        client_id = new_client(http, partner)
        response = put_image(http, client_logo(client_id), partner.headers, png())
        assert response.status_code == 200, response.text
        assert db.scalars(select(ClientLogo.client_id)).all() == [client_id]
        assert http.get(response.json()["logo_url"]).status_code == 200
        db.rollback()
        assert http.delete(client_logo(client_id), headers=partner.headers).status_code == 204
        assert db.scalars(select(ClientLogo)).all() == []

    def test_another_partner_s_client_is_not_found_and_keeps_its_logo(self, http, partner, make_partner, db):
        other = make_partner(dashboards=5, users=5, published_links=5, api_calls_per_day=1000)
        theirs = new_client(http, other)
        assert put_image(http, client_logo(theirs), other.headers, png()).status_code == 200
        assert put_image(http, client_logo(theirs), partner.headers, png(10, 10)).status_code == 404
        assert http.delete(client_logo(theirs), headers=partner.headers).status_code == 404
        assert db.scalars(select(ClientLogo.client_id)).all() == [theirs]

    def test_a_client_key_cannot_set_logos_and_never_learns_of_other_clients(self, http, partner, clock, db):
        own, _, headers = client_with_user(http, partner, clock, "trial", "boss@client.test")
        other = new_client(http, partner)
        assert put_image(http, client_logo(own), headers, png()).status_code == 403
        assert put_image(http, client_logo(other), headers, png()).status_code == 404
        assert put_image(http, client_logo(999_999), partner.headers, png()).status_code == 404
        assert db.scalars(select(ClientLogo)).all() == []

    def test_a_viewer_cannot_set_a_client_s_logo(self, http, partner, add_partner_user, db):
        client_id = new_client(http, partner)
        refused = put_image(http, client_logo(client_id), add_partner_user(partner, "viewer"), png())
        assert refused.status_code == 403
        assert db.scalars(select(ClientLogo)).all() == []

    def test_a_bad_image_for_a_client_is_refused(self, http, partner, db):
        client_id = new_client(http, partner)
        assert put_image(http, client_logo(client_id), partner.headers, SVG).status_code == 422
        assert db.scalars(select(ClientLogo)).all() == []


class TestStoredPictures:
    """A picture is stored once, whoever shows it, and deleted when nothing shows it any more: a
    removed or replaced logo stops being served, and uploads do not pile up."""

    def test_a_replaced_partner_logo_is_no_longer_served(self, http, partner, db):
        first = put_image(http, LOGO, partner.headers, png(colour=(1, 1, 1))).json()["logo_url"]
        second = put_image(http, LOGO, partner.headers, png(colour=(2, 2, 2))).json()["logo_url"]
        assert http.get(first).status_code == 404
        assert http.get(second).status_code == 200
        assert len(db.scalars(select(BrandLogo)).all()) == 1

    def test_a_removed_partner_logo_is_no_longer_served(self, http, partner, db):
        url = put_image(http, LOGO, partner.headers, png()).json()["logo_url"]
        assert http.delete(LOGO, headers=partner.headers).status_code == 204
        assert http.get(url).status_code == 404
        assert db.scalars(select(BrandLogo)).all() == []

    def test_uploading_the_same_picture_again_keeps_it(self, http, partner):
        url = put_image(http, LOGO, partner.headers, png()).json()["logo_url"]
        assert put_image(http, LOGO, partner.headers, png()).json()["logo_url"] == url
        assert http.get(url).status_code == 200

    def test_many_uploads_in_turn_leave_one_picture(self, http, partner, db):
        for n in range(12):
            assert put_image(http, LOGO, partner.headers, png(colour=(n, 0, 0))).status_code == 200
        assert len(db.scalars(select(BrandLogo)).all()) == 1

    def test_a_picture_another_partner_shows_is_kept_when_one_removes_it(self, http, partner, make_partner):
        other = make_partner(dashboards=5, users=5, published_links=5, api_calls_per_day=1000)
        url = put_image(http, LOGO, partner.headers, png()).json()["logo_url"]
        assert put_image(http, LOGO, other.headers, png()).json()["logo_url"] == url
        assert http.delete(LOGO, headers=partner.headers).status_code == 204
        assert http.get(url).status_code == 200

    def test_a_client_logo_goes_with_its_removal_but_not_while_the_partner_shows_it(self, http, partner):
        client_id = new_client(http, partner)
        url = put_image(http, client_logo(client_id), partner.headers, png()).json()["logo_url"]
        assert put_image(http, LOGO, partner.headers, png()).json()["logo_url"] == url
        assert http.delete(client_logo(client_id), headers=partner.headers).status_code == 204
        assert http.get(url).status_code == 200
        assert http.delete(LOGO, headers=partner.headers).status_code == 204
        assert http.get(url).status_code == 404

    def test_a_deleted_clients_logo_is_no_longer_served(self, http, partner):
        client_id = new_client(http, partner)
        url = put_image(http, client_logo(client_id), partner.headers, png()).json()["logo_url"]
        assert http.delete(f"/api/1/clients/{client_id}", headers=partner.headers).status_code == 204
        assert http.get(url).status_code == 404

    @pytest.mark.postgres
    def test_a_removal_racing_an_upload_of_the_same_picture_keeps_it(
        self, http, partner, make_partner, database
    ):
        """The upload holds the picture's row until it commits; the removal waits for it, then sees
        the new reference and keeps the picture."""
        if not database.url.startswith("postgresql"):
            pytest.skip("SQLite runs one write transaction at a time: there is no race")
        import threading

        from tenantry.branding.logos import reencode
        from tenantry.branding.repository import drop_logo_if_unused, store_logo

        other = make_partner(dashboards=5, users=5, published_links=5, api_calls_per_day=1000)
        picture = reencode(png())
        url = put_image(http, LOGO, partner.headers, png()).json()["logo_url"]
        with database.session(write=True) as uploading:
            store_logo(uploading, picture, datetime.now(UTC))
            row = uploading.scalars(select(Branding).where(Branding.partner_id == other.id)).one_or_none()
            if row is None:
                row = Branding(partner_id=other.id, product_name="Other", primary_color="#123456")
                row.updated_at = datetime.now(UTC)
                uploading.add(row)
            row.logo_sha256 = picture.sha256
            uploading.flush()
            dropped: list[bool] = []

            def remove() -> None:
                with database.session(write=True) as removing:
                    removing.execute(
                        Branding.__table__.update()
                        .where(Branding.partner_id == partner.id)
                        .values(logo_sha256=None)
                    )
                    dropped.append(drop_logo_if_unused(removing, picture.sha256))
                    removing.commit()

            removal = threading.Thread(target=remove)
            removal.start()
            removal.join(0.5)
            assert removal.is_alive()  # waiting for the upload's lock
            uploading.commit()
        removal.join(30)
        assert dropped == [False]
        assert http.get(url).status_code == 200

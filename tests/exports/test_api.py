"""Downloads and e-mail (SPEC §4 "download or email dashboards", the watermark rule): the real
files are opened — the PDF's text layer and the PNG's pixels — and the real e-mail is read."""

from __future__ import annotations

import io
import threading

import pytest
from PIL import Image

from tenantry.app import create_app
from tenantry.auth.principal import Principal
from tenantry.dashboards.live import LiveCache
from tenantry.errors import TenantryError
from tenantry.exports import service
from tenantry.exports.service import Renderer, new_renderer
from tenantry.exports.typeset import Typesetter
from tenantry.mail import SmtpMailer
from tests.content import WATERMARK, dashboard_in, is_watermark_red, move_to, pdf_text


def export(http, partner, dashboard_id, fmt):
    return http.get(f"/api/1/dashboards/{dashboard_id}/export?format={fmt}", headers=partner.headers)


def watermark_pixels(data: bytes) -> int:
    image = Image.open(io.BytesIO(data)).convert("RGB")
    return sum(1 for r, g, b in image.get_flattened_data() if is_watermark_red(r, g, b))


class TestDownloading:
    @pytest.mark.parametrize(
        ("status", "watermarked"), [("setup", True), ("trial", False), ("active", False)]
    )
    def test_the_pdf_carries_the_watermark_only_in_setup(self, http, partner, clock, status, watermarked):
        _, _, dashboard_id = dashboard_in(http, partner, status, clock)
        response = export(http, partner, dashboard_id, "pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        assert response.headers["content-disposition"] == 'attachment; filename="sales-2026-03-10.pdf"'
        text = pdf_text(response.content)
        assert "Sales" in text and "By month" in text
        # One watermark per klip, as real text.
        assert text.count(WATERMARK) == (5 if watermarked else 0)

    def test_the_file_is_named_after_the_partners_day_not_utcs(self, http, partner, clock):
        # 12:00 UTC on 10 March is 02:00 on 11 March on Kiritimati (UTC+14): the day the
        # dashboard's date filters count from there.
        _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        moved = http.patch("/api/1/partner", json={"timezone": "Pacific/Kiritimati"}, headers=partner.headers)
        assert moved.status_code == 200
        response = export(http, partner, dashboard_id, "png")
        assert response.status_code == 200
        assert response.headers["content-disposition"] == 'attachment; filename="sales-2026-03-11.png"'

    def test_the_png_shows_the_watermark_in_setup_and_not_in_trial(self, http, partner, clock):
        _, _, setup_dashboard = dashboard_in(http, partner, "setup", clock)
        _, _, trial_dashboard = dashboard_in(http, partner, "trial", clock)
        setup_png = export(http, partner, setup_dashboard, "png")
        trial_png = export(http, partner, trial_dashboard, "png")
        assert setup_png.headers["content-type"] == trial_png.headers["content-type"] == "image/png"
        assert setup_png.content.startswith(b"\x89PNG")
        assert watermark_pixels(setup_png.content) > 2000
        assert watermark_pixels(trial_png.content) < 50

    @pytest.mark.parametrize("status", ["trial_expired", "disabled"])
    @pytest.mark.parametrize("fmt", ["pdf", "png"])
    def test_downloads_are_refused_when_disabled_or_expired(self, http, partner, clock, status, fmt):
        _, _, dashboard_id = dashboard_in(http, partner, status, clock)
        response = export(http, partner, dashboard_id, fmt)
        assert response.status_code == 409
        problem = response.json()
        assert problem["code"] == "status_forbids"
        assert problem["client_status"] == status
        assert problem["detail"].startswith("Dashboards cannot be downloaded")

    def test_a_bad_format_is_a_422(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "setup")
        assert export(http, partner, dashboard_id, "docx").status_code == 422

    def test_the_same_drawing_serves_every_export_until_the_data_changes(self, app, http, partner):
        klip_svgs = app.state.services.renderer.live.klips
        _, source_id, dashboard_id = dashboard_in(http, partner, "active")
        export(http, partner, dashboard_id, "pdf")
        hits = klip_svgs.hits
        export(http, partner, dashboard_id, "png")
        assert klip_svgs.hits - hits == 5
        misses = klip_svgs.misses
        http.patch(
            f"/api/1/datasources/{source_id}",
            json={"rows": [{"month": "Apr", "region": "N", "sales": 1}]},
            headers=partner.headers,
        )
        text = pdf_text(export(http, partner, dashboard_id, "pdf").content)
        assert klip_svgs.misses - misses == 5
        assert "Apr" in text


def partner_principal(partner) -> Principal:  # type: ignore[no-untyped-def]
    return Principal("partner_user", partner.id, partner.admin_user_id, "admin")


class TestEmailing:
    @pytest.mark.parametrize(("status", "watermarked"), [("setup", True), ("active", False)])
    def test_the_email_carries_the_file_as_an_attachment(
        self, smtp_http, smtp_server, send_mail, partner, clock, status, watermarked
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, status, clock)
        response = smtp_http.post(
            f"/api/1/dashboards/{dashboard_id}/email",
            json={"to": ["boss@client.test"], "format": "pdf"},
            headers=partner.headers,
        )
        assert response.status_code == 202
        assert response.json() == {"queued": True, "delivered": False, "reason": None}
        assert smtp_server.messages == []  # the worker sends it, after the request
        assert send_mail() == 1
        (message,) = smtp_server.messages
        assert message["To"] == "boss@client.test"
        assert "Sales" in message["Subject"]
        (attachment,) = list(message.iter_attachments())
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == "sales-2026-03-10.pdf"
        assert (WATERMARK in pdf_text(attachment.get_content())) is watermarked

    def test_without_smtp_the_answer_says_it_was_not_delivered(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        response = http.post(
            f"/api/1/dashboards/{dashboard_id}/email", json={"to": ["a@b.test"]}, headers=partner.headers
        )
        assert response.status_code == 202
        assert (response.json()["queued"], response.json()["delivered"]) == (False, False)
        assert "no SMTP server" in response.json()["reason"]

    @pytest.mark.parametrize("status", ["trial_expired", "disabled"])
    def test_email_is_refused_when_disabled_or_expired(
        self, smtp_http, smtp_server, send_mail, partner, clock, status
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, status, clock)
        response = smtp_http.post(
            f"/api/1/dashboards/{dashboard_id}/email", json={"to": ["a@b.test"]}, headers=partner.headers
        )
        assert response.status_code == 409
        assert response.json()["detail"].startswith("Dashboards cannot be downloaded")
        assert send_mail() == 0
        assert smtp_server.messages == []

    @pytest.mark.parametrize(("then", "watermarked"), [("trial", False), ("setup", True)])
    def test_the_attachment_follows_the_status_at_the_moment_it_is_queued(
        self, smtp_http, smtp_server, send_mail, partner, clock, database, settings, then, watermarked
    ):
        """The attachment is drawn before the e-mail is queued, in a transaction of its own; a
        status change in between is seen when it is queued, and the file drawn again."""
        client_id, _, dashboard_id = dashboard_in(smtp_http, partner, "setup", clock)
        admin, renderer = partner_principal(partner), new_renderer()
        with database.session() as db:
            drawn = service.draw_dashboard_email(
                db, clock, admin, renderer, dashboard_id, ["boss@client.test"], "pdf"
            )
        assert WATERMARK in pdf_text(drawn.export.data)
        if then != "setup":
            move_to(smtp_http, partner, client_id, then, clock)
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "reports@tenantry.test")
        with database.session(write=True) as db:
            assert service.email_dashboard(db, clock, admin, mailer, renderer, drawn, settings).queued
            db.commit()
        assert send_mail() == 1
        (attachment,) = list(smtp_server.messages[0].iter_attachments())
        assert (WATERMARK in pdf_text(attachment.get_content())) is watermarked

    def test_a_client_disabled_after_the_drawing_gets_no_email(
        self, smtp_http, smtp_server, send_mail, partner, clock, database, settings
    ):
        client_id, _, dashboard_id = dashboard_in(smtp_http, partner, "active", clock)
        admin, renderer = partner_principal(partner), new_renderer()
        with database.session() as db:
            drawn = service.draw_dashboard_email(
                db, clock, admin, renderer, dashboard_id, ["a@b.test"], "png"
            )
        moved = smtp_http.patch(
            f"/api/1/clients/{client_id}", json={"status": "disabled"}, headers=partner.headers
        )
        assert moved.status_code == 200, moved.text
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "reports@tenantry.test")
        with database.session(write=True) as db, pytest.raises(TenantryError) as refused:
            service.email_dashboard(db, clock, admin, mailer, renderer, drawn, settings)
        assert refused.value.status == 409
        assert send_mail() == 0 and smtp_server.messages == []

    def test_no_write_lock_is_held_while_the_attachment_is_drawn(
        self, settings, clock, database, partner, http
    ):
        """Drawing takes a while; on SQLite a write transaction would stop every other writer
        meanwhile. Here the drawing is held half-way while another request changes a client."""
        client_id, _, dashboard_id = dashboard_in(http, partner, "active", clock)
        drawing, release = threading.Event(), threading.Event()

        class HeldTypesetter(Typesetter):
            def typeset(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                drawing.set()
                assert release.wait(30)
                return super().typeset(*args, **kwargs)

        from fastapi.testclient import TestClient

        app = create_app(settings, clock=clock, database=database)
        app.state.services.renderer = Renderer(LiveCache(), HeldTypesetter())
        with TestClient(app) as held_http:
            answers: list[int] = []
            emailing = threading.Thread(
                target=lambda: answers.append(
                    held_http.post(
                        f"/api/1/dashboards/{dashboard_id}/email",
                        json={"to": ["a@b.test"]},
                        headers=partner.headers,
                    ).status_code
                )
            )
            emailing.start()
            try:
                assert drawing.wait(30)
                renamed = http.patch(
                    f"/api/1/clients/{client_id}", json={"name": "Renamed"}, headers=partner.headers
                )
                assert renamed.status_code == 200, renamed.text
                assert emailing.is_alive()  # the drawing is still held: the change did not wait for it
            finally:
                release.set()
                emailing.join(30)
        assert answers == [202]

    @pytest.mark.parametrize(
        "body", [{"to": []}, {"to": ["not-an-address"]}, {"to": ["a@b.test"], "format": "doc"}]
    )
    def test_a_bad_email_request_is_a_422(self, http, partner, body):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        response = http.post(f"/api/1/dashboards/{dashboard_id}/email", json=body, headers=partner.headers)
        assert response.status_code == 422


def test_two_apps_in_one_process_share_no_drawings_and_no_published_pages(settings, clock, database):
    from tenantry.app import create_app

    first = create_app(settings, clock=clock, database=database).state.services.renderer
    second = create_app(settings, clock=clock, database=database).state.services.renderer
    assert first.live.klips is not second.live.klips
    assert first.live.fragments is not second.live.fragments
    assert first.live.pages is not second.live.pages
    assert first.live.pages.slot != second.live.pages.slot
    assert first.typesetter is not second.typesetter

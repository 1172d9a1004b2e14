"""The brand on every page (SPEC §16): console, portal, sign-in page by host and published pages,
and the console's Branding page with its preview and logo forms. Two partners' brands never mix."""

from __future__ import annotations

import asyncio
import base64
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from tenantry.app import create_app
from tenantry.branding import forget_all
from tenantry.db.branding_models import Branding, BrandLogo, ClientLogo
from tenantry.domains.service import verify_domain
from tests.branding.images import SVG, png
from tests.content import create_dashboard, inline_source, path_of, publish, share
from tests.factories import (
    PASSWORD,
    client_with_user,
    csrf_of,
    new_client,
    post_form,
    sign_in,
)
from tests.pages import InlineCode

BRANDING = "/api/1/partner/branding"
ACME = {
    "product_name": "Acme <Insights>",
    "primary_color": "#aa3300",
    "accent_color": "#00aa88",
    "support_email": "help@acme.test",
    "footer_text": "Acme Ltd & Co",
}


def brand(http, partner, **fields):
    response = http.patch(BRANDING, json={**ACME, **fields}, headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()


def set_logo(http, path, partner, data):
    response = http.put(path, content=data, headers={**partner.headers, "Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    return response.json()["logo_url"]


def header_of(html: str) -> str:
    return html.split("<header>", 1)[1].split("</header>", 1)[0]


def nonce_styles(html: str) -> list[str]:
    return re.findall(r'<style nonce="[^"]+">([^<]*)</style>', html)


@pytest.fixture
def on_domain(settings, clock, database, http):  # type: ignore[no-untyped-def]
    """A browser on the partner's own verified domain (an app that reads the domains' table on
    every request, so the domain verified just before serves at once)."""
    app = create_app(settings.model_copy(update={"domain_cache_seconds": 0}), clock=clock, database=database)

    def browser(partner) -> TestClient:  # type: ignore[no-untyped-def]
        hostname = f"p{partner.id}.brand.test"
        added = http.post("/api/1/partner/domains", json={"hostname": hostname}, headers=partner.headers)
        if added.status_code != 409:  # added by an earlier call for this partner
            assert added.status_code == 201, added.text
        with database.session(write=True) as db:
            verify_domain(db, clock, hostname)
            db.commit()
        return TestClient(app, base_url=f"http://{hostname}")

    return browser


class TestTheConsole:
    def test_the_console_shows_the_partner_s_name_logo_colours_footer_and_support_address(
        self, http, partner, partner_session
    ):
        brand(http, partner)
        logo = set_logo(http, "/api/1/partner/branding/logo", partner, png())
        html = http.get("/partner/clients").text
        header = header_of(html)
        assert "Acme &lt;Insights&gt;" in header and "Tenantry" not in header
        assert f'src="{logo}"' in header
        assert re.search(r"<title>[^<]*Acme &lt;Insights&gt;</title>", html)
        assert "Acme Ltd &amp; Co" in html
        assert 'href="mailto:help@acme.test"' in html
        assert nonce_styles(html) == [":root{--primary:#aa3300;--on-primary:#ffffff;--accent:#00aa88}"]

    def test_branded_pages_keep_to_the_content_security_policy(self, http, partner, partner_session):
        brand(http, partner)
        html = http.get("/partner/branding").text
        parsed = InlineCode()
        parsed.feed(html)
        assert parsed.attributes == []
        assert all(nonce for tag, nonce, src in parsed.elements if not src)

    def test_a_partner_without_branding_sees_the_product_s_own_brand(self, http, partner, partner_session):
        html = http.get("/partner/clients").text
        assert '<span class="brand-name">Tenantry</span>' in header_of(html)
        assert nonce_styles(html) == []

    def test_a_light_primary_colour_gets_dark_header_text(self, http, partner, partner_session):
        brand(http, partner, primary_color="#f0f0f0")
        assert "--on-primary:#1d2330" in http.get("/partner/clients").text


class TestThePortal:
    def test_the_portal_shows_the_client_s_logo_before_the_partner_s(self, http, partner, clock):
        brand(http, partner)
        partner_logo = set_logo(http, "/api/1/partner/branding/logo", partner, png(colour=(1, 2, 3)))
        client_id, user, _ = client_with_user(http, partner, clock, "active", "reader@client.test")
        assert sign_in(http, user["email"], PASSWORD).status_code == 303
        header = header_of(http.get("/app").text)
        assert f'src="{partner_logo}"' in header and "Acme &lt;Insights&gt;" in header
        client_logo = set_logo(
            http, f"/api/1/clients/{client_id}/branding/logo", partner, png(colour=(9, 9, 9))
        )
        header = header_of(http.get("/app").text)
        assert f'src="{client_logo}"' in header and partner_logo not in header

    def test_another_client_of_the_partner_keeps_the_partner_s_logo(self, http, partner, clock):
        partner_logo = set_logo(http, "/api/1/partner/branding/logo", partner, png(colour=(1, 2, 3)))
        other = new_client(http, partner)
        set_logo(http, f"/api/1/clients/{other}/branding/logo", partner, png(colour=(9, 9, 9)))
        _, user, _ = client_with_user(http, partner, clock, "active", "reader@client.test")
        assert sign_in(http, user["email"], PASSWORD).status_code == 303
        assert f'src="{partner_logo}"' in header_of(http.get("/app").text)


class TestSignInByHost:
    def test_the_sign_in_page_on_the_default_address_shows_the_product_s_brand(self, http, partner):
        brand(http, partner)
        html = http.get("/login").text
        assert "Tenantry" in header_of(html) and "Acme" not in html

    def test_the_sign_in_page_on_a_partner_s_domain_shows_its_brand(self, on_domain, http, partner):
        brand(http, partner)
        logo = set_logo(http, "/api/1/partner/branding/logo", partner, png())
        with on_domain(partner) as browser:
            html = browser.get("/login").text
        assert "Acme &lt;Insights&gt;" in header_of(html)
        assert f'src="{logo}"' in html
        assert re.search(r"<title>Sign in · Acme &lt;Insights&gt;</title>", html)
        assert "--primary:#aa3300" in html

    def test_a_page_on_a_partner_s_domain_never_reads_its_brand_on_the_event_loop(
        self, on_domain, http, partner, database
    ):
        """The brand is read on a worker thread when this process has not read it lately: a slow
        or absent database never holds up the loop that serves every other request."""
        brand(http, partner)
        on_the_loop: list[bool] = []

        def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            if "FROM branding" in statement:
                try:
                    asyncio.get_running_loop()
                    on_the_loop.append(True)
                except RuntimeError:
                    on_the_loop.append(False)

        forget_all()
        event.listen(database.engine, "before_cursor_execute", record)
        try:
            with on_domain(partner) as browser:
                html = browser.get("/login").text
        finally:
            event.remove(database.engine, "before_cursor_execute", record)
        assert "Acme &lt;Insights&gt;" in header_of(html)
        assert on_the_loop and not any(on_the_loop)

    def test_an_invitation_page_on_a_partner_s_domain_shows_its_brand(self, on_domain, http, partner):
        brand(http, partner)
        with on_domain(partner) as browser:
            html = browser.get("/invite/not-a-real-token").text
        assert "Acme &lt;Insights&gt;" in html


class TestPublishedPages:
    def published(self, http, partner, client_id):
        source_id = inline_source(http, partner, client_id)
        dashboard_id = create_dashboard(http, partner, client_id, source_id).json()["id"]
        return path_of(publish(http, partner, dashboard_id).json())

    def test_a_published_dashboard_shows_the_partner_s_brand_and_the_client_s_logo(
        self, http, partner, clock
    ):
        brand(http, partner)
        client_id = new_client(http, partner, "active")
        client_logo = set_logo(http, f"/api/1/clients/{client_id}/branding/logo", partner, png())
        html = http.get(self.published(http, partner, client_id)).text
        assert "Acme &lt;Insights&gt;" in html
        assert f'src="{client_logo}"' in html
        assert "--primary:#aa3300" in html

    def test_a_changed_brand_shows_on_the_next_view_of_a_published_page(self, http, partner):
        client_id = new_client(http, partner, "active")
        path = self.published(http, partner, client_id)
        assert "Acme" not in http.get(path).text
        brand(http, partner)
        assert "Acme &lt;Insights&gt;" in http.get(path).text
        brand(http, partner, product_name="Renamed Co")
        html = http.get(path).text
        assert "Renamed Co" in html and "Acme &lt;Insights" not in html


class TestTwoPartners:
    def test_two_partners_brands_never_cross_on_pages_or_published_dashboards(
        self, http, on_domain, partner, make_partner, clock
    ):
        other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        brand(http, partner, product_name="Alpha Co", primary_color="#111111")
        brand(http, other, product_name="Beta Co", primary_color="#222222")
        paths = {}
        for who, handle in (("alpha", partner), ("beta", other)):
            client_id = new_client(http, handle, "active")
            source_id = inline_source(http, handle, client_id)
            dashboard_id = create_dashboard(http, handle, client_id, source_id).json()["id"]
            paths[who] = path_of(publish(http, handle, dashboard_id).json())
        for _ in range(2):  # the second time from the caches
            alpha, beta = http.get(paths["alpha"]).text, http.get(paths["beta"]).text
            assert "Alpha Co" in alpha and "#111111" in alpha and "Beta Co" not in alpha
            assert "Beta Co" in beta and "#222222" in beta and "Alpha Co" not in beta
            for handle, name in ((partner, "Alpha Co"), (other, "Beta Co")):
                with on_domain(handle) as browser:
                    assert name in header_of(browser.get("/login").text)


class TestTheBrandingPage:
    def form(self, http, **fields):
        return {"csrf_token": csrf_of(http.get("/partner/branding").text), **ACME, **fields}

    def test_an_admin_saves_the_brand_from_the_page(self, http, partner, partner_session, db):
        response = http.post("/partner/branding", data=self.form(http), follow_redirects=False)
        assert response.status_code == 303
        page = http.get("/partner/branding").text
        assert "Branding saved." in page
        assert 'value="Acme &lt;Insights&gt;"' in page
        assert db.scalars(select(Branding.product_name)).all() == ["Acme <Insights>"]

    def test_the_preview_draws_the_form_as_it_is_and_saves_nothing(self, http, partner, partner_session, db):
        response = http.post("/partner/branding/preview", data=self.form(http, product_name="Preview & Co"))
        assert response.status_code == 200
        src = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', response.text).group(1)
        svg = base64.b64decode(src).decode()
        assert "Preview &amp; Co" in svg and 'fill="#aa3300"' in svg
        assert db.scalars(select(Branding)).all() == []

    def test_a_bad_colour_in_the_preview_is_named_in_place_of_the_preview(
        self, http, partner, partner_session
    ):
        response = http.post("/partner/branding/preview", data=self.form(http, primary_color="red"))
        assert response.status_code == 422
        assert "Primary color" in response.text and "<img" not in response.text

    def test_a_bad_field_is_refused_on_the_page_and_nothing_is_saved(
        self, http, partner, partner_session, db
    ):
        response = http.post(
            "/partner/branding", data=self.form(http, accent_color="#12345z"), follow_redirects=True
        )
        assert "Accent color" in response.text
        assert db.scalars(select(Branding)).all() == []

    def test_a_form_without_its_csrf_token_is_refused(self, http, partner, partner_session, db):
        response = http.post("/partner/branding", data={**ACME, "csrf_token": "forged"})
        assert response.status_code == 403
        assert db.scalars(select(Branding)).all() == []

    def test_a_logo_is_uploaded_and_removed_with_multipart_forms(self, http, partner, partner_session, db):
        csrf = csrf_of(http.get("/partner/branding").text)
        response = http.post(
            "/partner/branding/logo",
            data={"csrf_token": csrf},
            files={"logo": ("logo.png", png(), "image/png")},
            follow_redirects=False,
        )
        assert response.status_code == 303
        page = http.get("/partner/branding").text
        assert "Logo saved." in page
        [sha] = db.scalars(select(Branding.logo_sha256)).all()
        assert f"/brand/logo/{sha}.png" in page
        db.rollback()
        post_form(http, "/partner/branding/logo/remove", "/partner/branding")
        assert db.scalars(select(Branding.logo_sha256)).all() == [None]

    def test_an_svg_logo_is_refused_on_the_page(self, http, partner, partner_session, db):
        csrf = csrf_of(http.get("/partner/branding").text)
        response = http.post(
            "/partner/branding/logo",
            data={"csrf_token": csrf},
            files={"logo": ("logo.svg", SVG, "image/svg+xml")},
        )
        assert "only PNG and JPEG" in response.text
        assert db.scalars(select(BrandLogo)).all() == []

    def test_a_viewer_sees_the_brand_but_cannot_change_it(self, http, partner, clock, database, db):
        from tests.factories import add_partner_viewer

        add_partner_viewer(database, partner, clock)
        assert sign_in(http, "viewer@partner.test", PASSWORD).status_code == 303
        page = http.get("/partner/branding").text
        assert "Only an admin can change the branding." in page
        response = http.post(
            "/partner/branding", data={**ACME, "csrf_token": csrf_of(page)}, follow_redirects=True
        )
        assert "Only an admin" in response.text
        assert db.scalars(select(Branding)).all() == []

    def test_a_client_user_is_sent_to_the_portal(self, http, partner, clock):
        _, user, _ = client_with_user(http, partner, clock, "active", "reader@client.test")
        sign_in(http, user["email"], PASSWORD)
        response = http.get("/partner/branding", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/app"


class TestClientLogoOnTheClientPage:
    def test_a_partner_uploads_a_client_s_logo_from_its_page(self, http, partner, partner_session, db):
        client_id = new_client(http, partner)
        page = http.get(f"/partner/clients/{client_id}").text
        response = http.post(
            f"/partner/clients/{client_id}/logo",
            data={"csrf_token": csrf_of(page)},
            files={"logo": ("logo.png", png(), "image/png")},
            follow_redirects=False,
        )
        assert response.status_code == 303
        [sha] = db.scalars(select(ClientLogo.logo_sha256)).all()
        assert f"/brand/logo/{sha}.png" in http.get(f"/partner/clients/{client_id}").text

    def test_another_partner_s_client_cannot_be_given_a_logo(
        self, http, partner, partner_session, make_partner, db
    ):
        other = make_partner(dashboards=5, users=5, published_links=5, api_calls_per_day=1000)
        theirs = new_client(http, other)
        csrf = csrf_of(http.get("/partner/branding").text)
        response = http.post(
            f"/partner/clients/{theirs}/logo",
            data={"csrf_token": csrf},
            files={"logo": ("logo.png", png(), "image/png")},
            follow_redirects=True,
        )
        assert f"No client {theirs}" in response.text
        assert db.scalars(select(ClientLogo)).all() == []


class TestChartColours:
    def test_the_portal_and_published_dashboards_draw_the_first_series_in_the_primary_colour(
        self, http, partner, clock
    ):
        from tenantry.charts.svg import PALETTE

        brand(http, partner, primary_color="#00ff7f")
        client_id, user, _ = client_with_user(http, partner, clock, "active", "reader@client.test")
        source_id = inline_source(http, partner, client_id)
        dashboard_id = create_dashboard(http, partner, client_id, source_id).json()["id"]
        share(http, partner, dashboard_id, user["id"])
        path = path_of(publish(http, partner, dashboard_id).json())
        published = http.get(path).text
        polled = http.get(path + "/live").json()["html"]
        assert sign_in(http, user["email"], PASSWORD).status_code == 303
        portal = http.get(f"/app/dashboards/{dashboard_id}").text
        for html in (published, polled, portal):
            assert 'fill="#00ff7f"' in html
            assert f'fill="{PALETTE[0]}"' not in html and f'stroke="{PALETTE[0]}"' not in html

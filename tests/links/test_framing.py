"""Published pages in other sites (SPEC §12 "Headers"): embeddable anywhere by default, only where
the link's `allowed_origins` say when it names some; their inline code runs by a per-response
nonce, never by 'unsafe-inline'."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tenantry.db.dashboard_models import PublishedLink
from tests.content import dashboard_in, path_of, publish
from tests.factories import ADMIN_PASSWORD, admin_email, csrf_of, sign_in
from tests.pages import InlineCode, directives


def nonces_of(page) -> set[str]:
    policy = directives(page)
    script = set(re.findall(r"'nonce-([^']+)'", policy["script-src"]))
    assert script == set(re.findall(r"'nonce-([^']+)'", policy["style-src"]))
    return script


class TestFraming:
    def test_by_default_any_site_may_embed_the_page(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id).json()
        assert link["allowed_origins"] is None
        page = http.get(path_of(link))
        assert page.status_code == 200
        assert "frame-ancestors" not in directives(page)
        assert "x-frame-options" not in page.headers
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"

    def test_a_link_naming_origins_may_be_framed_only_by_them(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        named = ["https://Intranet.Example.com/", "http://localhost:8080", "https://intranet.example.com:443"]
        response = publish(http, partner, dashboard_id, allowed_origins=[*named, "https://*.example.org"])
        assert response.status_code == 201, response.text
        link = response.json()
        expected = ["https://intranet.example.com", "http://localhost:8080", "https://*.example.org"]
        assert link["allowed_origins"] == expected
        page = http.get(path_of(link))
        assert directives(page)["frame-ancestors"] == " ".join(expected)
        listed = http.get(f"/api/1/dashboards/{dashboard_id}/published-links", headers=partner.headers)
        assert listed.json()["items"][0]["allowed_origins"] == expected

    def test_an_empty_list_lets_no_site_embed_the_page(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id, allowed_origins=[]).json()
        assert directives(http.get(path_of(link)))["frame-ancestors"] == "'none'"

    def test_over_https_a_given_password_is_remembered_inside_another_sites_frame(self, app, http, partner):
        """Browsers send a `SameSite=Lax` cookie to no cross-site frame: over https the proof is
        `SameSite=None; Secure; Partitioned`, over plain http (no `None` without `Secure`) `Lax`."""
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(http, partner, dashboard_id, password="open sesame").json()
        with TestClient(app, base_url="https://dashboards.example.com") as secure:
            right = secure.post(path_of(link), data={"password": "open sesame"}, follow_redirects=False)
            assert right.status_code == 303
            cookie = right.headers["set-cookie"].lower()
            assert "samesite=none" in cookie and "; secure" in cookie and "; partitioned" in cookie
            assert "httponly" in cookie and "path=/published/" in cookie
            assert secure.get(path_of(link)).text.count("<svg") == 5
        plain = http.post(path_of(link), data={"password": "open sesame"}, follow_redirects=False)
        cookie = plain.headers["set-cookie"].lower()
        assert "samesite=lax" in cookie and "secure" not in cookie and "partitioned" not in cookie

    def test_the_password_form_of_a_restricted_link_is_restricted_too(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        link = publish(
            http, partner, dashboard_id, password="open sesame", allowed_origins=["https://a.example"]
        ).json()
        form = http.get(path_of(link))
        assert form.status_code == 401
        assert directives(form)["frame-ancestors"] == "https://a.example"
        wrong = http.post(path_of(link), data={"password": "not it"})
        assert directives(wrong)["frame-ancestors"] == "https://a.example"

    @pytest.mark.parametrize(
        "origin",
        [
            "https://a.example; script-src *",
            "https://a.example 'unsafe-inline'",
            "'self'",
            "*",
            "javascript:alert(1)",
            "data:",
            "https://a.example/page",
            "https://a.example?x=1",
            "https://user:secret@a.example",
            "ftp://a.example",
            "https://*.example",
            "https://a.example:70000",
            "https://a\u2028.example",
            "https://",
        ],
    )
    def test_anything_but_an_origin_is_refused_and_nothing_is_created(self, http, partner, db, origin):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        refused = publish(http, partner, dashboard_id, allowed_origins=["https://ok.example", origin])
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "validation_error"
        assert db.scalar(select(func.count()).select_from(PublishedLink)) == 0
        accepted = publish(http, partner, dashboard_id, allowed_origins=["https://ok.example"])
        assert accepted.status_code == 201

    def test_at_most_twenty_origins(self, http, partner, db):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        origins = [f"https://site{n}.example" for n in range(21)]
        assert publish(http, partner, dashboard_id, allowed_origins=origins).status_code == 422
        assert db.scalar(select(func.count()).select_from(PublishedLink)) == 0
        assert publish(http, partner, dashboard_id, allowed_origins=origins[:20]).status_code == 201

    def test_the_console_form_sets_them_and_the_list_shows_them(self, http, partner, db):
        client_id, _, dashboard_id = dashboard_in(http, partner, "active")
        email = admin_email(db, partner)
        db.rollback()
        sign_in(http, email, ADMIN_PASSWORD)
        base = f"/partner/clients/{client_id}"
        form = {
            "csrf_token": csrf_of(http.get(base).text),
            "name": "Intranet",
            "allowed_origins": "https://intranet.example, https://wall.example\nhttps://intranet.example",
        }
        assert http.post(f"{base}/dashboards/{dashboard_id}/links", data=form).status_code == 200
        page = http.get(base).text
        assert "may be embedded only on https://intranet.example, https://wall.example" in page
        stored = db.scalars(select(PublishedLink)).one()
        assert stored.allowed_origins == ["https://intranet.example", "https://wall.example"]
        form["allowed_origins"] = "https://a.example/with/a/path"
        refused = http.post(f"{base}/dashboards/{dashboard_id}/links", data=form)
        assert "is not an origin" in refused.text
        db.rollback()
        assert db.scalar(select(func.count()).select_from(PublishedLink)) == 1


class TestInlineCode:
    def test_the_pages_script_and_style_run_by_a_nonce_new_on_every_view(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        path = path_of(publish(http, partner, dashboard_id).json())
        first, second = http.get(path), http.get(path)
        for page in (first, second):
            policy = directives(page)
            assert policy["default-src"] == "'none'"
            assert "'unsafe-inline'" not in page.headers["content-security-policy"]
            (nonce,) = nonces_of(page)
            code = InlineCode()
            code.feed(page.text)
            assert sorted(tag for tag, _, _ in code.elements) == ["script", "style"]
            assert {n for _, n, _ in code.elements} == {nonce}
            assert code.attributes == []
        assert nonces_of(first) != nonces_of(second)

    def test_the_password_and_unavailable_pages_style_runs_by_a_nonce(self, http, partner):
        _, _, dashboard_id = dashboard_in(http, partner, "active")
        protected = http.get(path_of(publish(http, partner, dashboard_id, password="open sesame").json()))
        unknown = http.get("/published/" + "x" * 43)
        for page in (protected, unknown):
            (nonce,) = nonces_of(page)
            assert f'<style nonce="{nonce}">' in page.text
            assert "'unsafe-inline'" not in page.headers["content-security-policy"]

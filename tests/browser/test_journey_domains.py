"""A partner's own domain in a real browser: Chromium resolves the test domains to the loopback
server (`--host-resolver-rules`), so `http://agency-a.test:<port>` is the app as a client of
agency A reaches it. Sign-in, the portal and a published link work there; another partner's users
cannot sign in there and its link is not found there.

With TENANTRY_SCREENSHOTS=<dir> the screenshot is kept there (docs/screenshots/custom-domain.png)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tenantry.app import create_app
from tenantry.branding import brand_for
from tenantry.domains.service import verify_domain
from tests.browser.conftest import ARGS, CHROMIUM
from tests.content import dashboard_in, path_of, portal_dashboard, publish, share
from tests.factories import ADMIN_PASSWORD, PASSWORD, admin_email, client_with_user
from tests.pages import browser_sign_in, watch_policy

A_HOST, B_HOST = "agency-a.test", "agency-b.test"


@pytest.fixture
def app(settings, clock, database):  # type: ignore[no-untyped-def]
    """The app reading its table of verified domains on every request (verified beside it here)."""
    return create_app(settings.model_copy(update={"domain_cache_seconds": 0}), clock=clock, database=database)


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Chromium resolving every *.test name to the loopback server."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, "--host-resolver-rules=MAP *.test 127.0.0.1"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


def verified(http, database, clock, partner, hostname: str) -> None:  # type: ignore[no-untyped-def]
    response = http.post("/api/1/partner/domains", json={"hostname": hostname}, headers=partner.headers)
    assert response.status_code == 201, response.text
    with database.session(write=True) as db:
        verify_domain(db, clock, hostname)
        db.commit()


def test_a_client_signs_in_and_opens_links_on_its_partners_own_domain(
    browser, server_url, http, make_partner, database, db, clock, tmp_path
):
    shots = Path(os.environ.get("TENANTRY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    port = urlsplit(server_url).port
    on_a, on_b = f"http://{A_HOST}:{port}", f"http://{B_HOST}:{port}"
    roomy = {"dashboards": 10, "users": 10, "published_links": 10, "api_calls_per_day": 1000}
    a, b = make_partner("Agency A", **roomy), make_partner("Agency B", **roomy)
    verified(http, database, clock, a, A_HOST)
    verified(http, database, clock, b, B_HOST)
    client_id, user, _ = client_with_user(http, a, clock, "active", "reader@client-a.test", dashboards=2)
    dashboard_id, _ = portal_dashboard(http, a, client_id, name="Harbour sales")
    share(http, a, dashboard_id, user["id"])
    a_link = publish(http, a, dashboard_in(http, a, "active")[2]).json()
    b_link = publish(http, b, dashboard_in(http, b, "active")[2]).json()
    assert a_link["url"].startswith(f"https://{A_HOST}/published/")
    b_admin = admin_email(db, b)
    a_brand = brand_for(db, a.id)
    db.rollback()

    violations: list[str] = []
    context = watch_policy(browser.new_context(viewport={"width": 1280, "height": 900}), violations)
    page = context.new_page()

    # The sign-in page on agency A's domain is in agency A's brand.
    page.goto(on_a + "/login")
    expect(page.get_by_text(a_brand.product_name).first).to_be_visible()

    # Agency B's admin is a stranger on agency A's domain: the answer of a wrong password.
    browser_sign_in(page, on_a, b_admin, ADMIN_PASSWORD)
    expect(page.get_by_text("The e-mail address or password is not correct.")).to_be_visible()

    # Agency A's client signs in there and sees the dashboard shared with them.
    browser_sign_in(page, on_a, "reader@client-a.test", PASSWORD)
    expect(page).to_have_url(on_a + "/app")
    page.get_by_role("link", name="Harbour sales", exact=True).click()
    expect(page.locator("figure.klip")).to_have_count(1)
    page.screenshot(path=shots / "custom-domain.png", full_page=True)

    # The same session is no session on agency B's domain (a cookie of B's host, had it one).
    other = context.new_page()
    other.goto(on_b + "/app")
    expect(other).to_have_url(on_b + "/login")
    other.close()

    # Agency A's published link is served on its domain; agency B's is not found there.
    page.goto(on_a + path_of(a_link))
    expect(page.locator("figure.klip").first).to_be_visible()
    answer = page.goto(on_a + path_of(b_link))
    assert answer is not None and answer.status == 404
    expect(page.get_by_text("This dashboard is not available")).to_be_visible()
    # On its own partner's domain it is served.
    page.goto(on_b + path_of(b_link))
    expect(page.locator("figure.klip").first).to_be_visible()
    context.close()
    assert violations == []


def test_the_custom_domain_screenshot_is_in_the_docs():
    assert (Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "custom-domain.png").is_file()

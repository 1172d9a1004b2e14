"""Branding in a browser: a partner admin sets the name, colours and footer on the Branding page,
watches the preview follow the form before saving, uploads a logo, and a client user then signs in
to a portal in that brand. No Content-Security-Policy violation on the way.

With TENANTRY_SCREENSHOTS=<dir> the screenshots (branding.png, portal-branded.png) are kept there
(that is how docs/screenshots/ is made)."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from PIL import Image, ImageDraw
from playwright.sync_api import Page, expect

from tests.content import ROWS
from tests.factories import ADMIN_PASSWORD, admin_email
from tests.pages import browser_sign_in, watch_policy

USER_EMAIL = "reader@nordlys.test"
USER_PASSWORD = "reader password 1"


def logo_file(folder: Path) -> Path:
    image = Image.new("RGB", (360, 96), (15, 118, 110))
    draw = ImageDraw.Draw(image)
    draw.ellipse((16, 16, 80, 80), fill=(250, 204, 21))
    draw.rectangle((100, 38, 340, 58), fill=(255, 255, 255))
    path = folder / "logo.png"
    image.save(path, format="PNG")
    return path


def flash(page: Page) -> str:
    return page.locator("main > p[role]").first.inner_text()


def a_client_with_a_user(base: str, headers: dict[str, str]) -> None:
    resources = {"dashboards": 2, "users": 2, "published_links": 1}
    with httpx.Client(base_url=base, headers=headers) as api:
        body = {"name": "Harbour Coffee", "status": "active", "resources": resources}
        client_id = api.post("/api/1/clients", json=body).json()["id"]
        user = {"email": USER_EMAIL, "name": "Reader", "role": "admin", "password": USER_PASSWORD}
        user_id = api.post(f"/api/1/clients/{client_id}/users", json=user).json()["id"]
        source = {"name": "Sales", "kind": "inline", "rows": ROWS}
        source_id = api.post(f"/api/1/clients/{client_id}/datasources", json=source).json()["id"]
        klips = [{"title": "Sales by region", "kind": "bar", "datasource_id": source_id,
                  "columns": {"x": "region", "y": "sales"}}]  # fmt: skip
        board = api.post(f"/api/1/clients/{client_id}/dashboards", json={"name": "Sales", "klips": klips})
        api.put(
            f"/api/1/dashboards/{board.json()['id']}/shares", json={"user_ids": [user_id]}
        ).raise_for_status()


def test_a_partner_brands_the_product_and_a_client_user_sees_the_branded_portal(
    browser, server_url, partner, db, tmp_path
):
    shots = Path(os.environ.get("TENANTRY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    email = admin_email(db, partner)
    db.rollback()
    a_client_with_a_user(server_url, partner.headers)
    violations: list[str] = []
    context = watch_policy(browser.new_context(viewport={"width": 1280, "height": 900}), violations)
    page = context.new_page()
    browser_sign_in(page, server_url, email, ADMIN_PASSWORD)
    expect(page).to_have_url(server_url + "/partner")

    page.get_by_role("link", name="Branding", exact=True).click()
    expect(page.get_by_role("heading", name="Branding", exact=True)).to_be_visible()
    preview = page.locator("#brand-preview img")
    expect(preview).to_have_attribute("alt", "Preview of Tenantry")

    # The preview follows the form before anything is saved.
    page.get_by_label("Product name", exact=True).fill("Nordlys Analytics")
    expect(preview).to_have_attribute("alt", "Preview of Nordlys Analytics")
    page.locator("#primary_color").fill("#0f766e")
    page.locator("#accent_color").fill("#b45309")
    page.locator("#footer_text").fill("Nordlys AS · Storgata 1, Tromsø")
    page.locator("#support_email").fill("support@nordlys.test")
    expect(page.locator("header .brand-name")).to_have_text("Tenantry")  # not saved yet

    page.get_by_role("button", name="Save branding").click()
    assert flash(page) == "Branding saved."
    expect(page.locator("header .brand-name")).to_have_text("Nordlys Analytics")
    expect(page).to_have_title("Branding · Nordlys Analytics")

    page.get_by_label("PNG or JPEG", exact=False).set_input_files(logo_file(tmp_path))
    page.get_by_role("button", name="Upload logo").click()
    assert flash(page) == "Logo saved."
    expect(page.locator("header img.brand-logo")).to_be_visible()
    header_colour = page.locator("header").evaluate("e => getComputedStyle(e).backgroundColor")
    assert header_colour == "rgb(15, 118, 110)"
    expect(page.locator("footer.brand-footer")).to_contain_text("Nordlys AS")
    page.screenshot(path=shots / "branding.png", full_page=True)

    # A client user signs in to the portal in the partner's brand.
    portal = watch_policy(browser.new_context(viewport={"width": 1280, "height": 900}), violations).new_page()
    browser_sign_in(portal, server_url, USER_EMAIL, USER_PASSWORD)
    expect(portal).to_have_url(server_url + "/app")
    expect(portal.locator("header .brand-name")).to_have_text("Nordlys Analytics")
    expect(portal.locator("header img.brand-logo")).to_be_visible()
    assert (
        portal.locator("header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(15, 118, 110)"
    )
    expect(portal.locator("footer.brand-footer")).to_contain_text("support@nordlys.test")
    portal.get_by_role("link", name="Sales", exact=True).click()
    expect(portal.locator("figure.klip")).to_have_count(1)
    portal.screenshot(path=shots / "portal-branded.png", full_page=True)
    assert violations == []

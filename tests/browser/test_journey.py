"""The whole journey in a browser, as a partner and a client user would walk it: create a client
in Setup, build a dashboard from a local CSV source in the builder (a value, a bar and a table
klip from form fields, one resized, a date filter), download it (watermarked), start a trial,
add a user who signs in, sees the dashboard and filters it, publish a link and open it filtered,
export it filtered, extend the trial, set the client's timezone, activate (blocked until
allocated), disable (the user is suspended, the link is dead), re-activate.

Screenshots of the main pages are taken on the way; with TENANTRY_SCREENSHOTS=<dir> they are
kept there (that is how docs/screenshots/ is made)."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, expect
from pypdf import PdfReader
from sqlalchemy import select

from tenantry.datasources.fetch import fetch_rows
from tenantry.datasources.service import refresh_source
from tenantry.db.dashboard_models import DataSource
from tenantry.outbound import Guard
from tests.factories import ADMIN_PASSWORD, admin_email
from tests.pages import browser_sign_in, watch_policy
from tests.servers import local_http_server


def daily_csv(today: date) -> str:
    """Sixty days of sales up to today, one row a day: 10 a day, North and South taking turns."""
    lines = ["day,region,sales"]
    for back in range(59, -1, -1):
        lines.append(f"{today - timedelta(days=back)},{'North' if back % 2 else 'South'},10")
    return "\n".join(lines) + "\n"


USER_EMAIL = "reader@journey.test"
USER_PASSWORD = "reader password 1"
SUSPENDED = "Your account has been suspended. Please contact your account administrator."
MAIN_PAGES = [
    "login",
    "clients",
    "client",
    "sources",
    "plan",
    "portal",
    "dashboard",
    "dashboard-filtered",
    "builder",
    "clients-phone",
]
# The pages the other journeys photograph (test_journey_<area>.py), each in its own file.
OTHER_JOURNEYS_PAGES = [
    "templates",
    "import",
    "clients-bulk",
    "branding",
    "portal-branded",
    "custom-domain",
    "reset",
    "mfa",
    "schedules",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def neighbours(base: str, headers: dict[str, str]) -> None:
    """Other clients in other statuses, so the list looks like a partner's list."""
    some = {"dashboards": 2, "users": 2, "published_links": 1}
    bodies = [
        {"name": "Acme Bakery", "external_id": "AC-1"},
        {"name": "Blue Fin Sushi", "status": "trial", "resources": some},
        {"name": "Fjord Freight", "status": "active", "resources": some},
    ]
    with httpx.Client(base_url=base, headers=headers) as api:
        ids = [api.post("/api/1/clients", json=body).json()["id"] for body in bodies]
        assert api.patch(f"/api/1/clients/{ids[2]}", json={"status": "disabled"}).status_code == 200


def flash(page: Page) -> str:
    return page.locator("main > p[role]").first.inner_text()


def build_klips(page: Page) -> None:
    """In the builder: a value (the sum of sales), a bar (sales by day) and a table (sorted by
    sales), each from form fields, the preview drawn before saving."""
    form = page.locator("#klip-form")
    preview = page.locator("#preview svg")
    page.locator("#k-title").fill("Total sales")
    page.locator("#k-agg-fn-0").select_option("sum")
    page.locator("#k-agg-column-0").select_option("sales")
    page.locator("#k-agg-as-0").fill("total")
    page.locator("#k-agg-as-0").press("Tab")
    # The form comes back with the aggregate's name among the columns to show.
    expect(page.locator("#k-value option[value=total]")).to_be_attached()
    page.locator("#k-value").select_option("total")
    expect(preview).to_be_visible()
    expect(page.locator("#preview")).to_contain_text("1 row after the query")
    form.get_by_role("button", name="Add klip").click()
    assert flash(page) == "Klip Total sales added."

    page.locator("#k-kind").select_option("bar")
    expect(page.locator("#k-x")).to_be_attached()
    page.locator("#k-title").fill("By day")
    page.locator("#k-x").select_option("day")
    page.locator("#k-series").select_option(["sales"])
    expect(preview).to_be_visible()
    page.locator("#klip-form").get_by_role("button", name="Add klip").click()
    assert flash(page) == "Klip By day added."

    page.locator("#k-kind").select_option("table")
    expect(page.locator("#k-fields")).to_be_attached()
    page.locator("#k-title").fill("All rows")
    page.locator("#k-sort").select_option("sales")
    page.locator("#klip-form").get_by_label("Descending").check()
    page.locator("#k-limit").fill("20")
    expect(preview).to_be_visible()
    page.locator("#klip-form").get_by_role("button", name="Add klip").click()
    assert flash(page) == "Klip All rows added."


ORDERS_TOKEN = "journey-token-4d1e"
ORDERS_CSV = "order,amount\nA-1,120\nA-2,80\nA-3,45\n"


@contextmanager
def token_server() -> Iterator[str]:
    """A CSV of orders on 127.0.0.1 that answers only `Bearer ORDERS_TOKEN` (else 401)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == f"Bearer {ORDERS_TOKEN}"
            body = (ORDERS_CSV if ok else "no").encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        yield base + "/orders.csv"


def add_token_source(page: Page, shots: Path) -> None:
    """On the client's page: a url source with a bearer token, tested (its rows shown, nothing
    saved) then saved, with the token never shown again; then a client property."""
    with token_server() as orders_url:
        page.get_by_text("Add a data source: a file at a URL", exact=True).click()
        form = page.locator("#source-url")
        page.locator("#source-url-name").fill("Orders API")
        page.locator("#source-url-url").fill(orders_url)
        page.locator("#source-url-auth").select_option("bearer")
        page.locator("#source-url-token").fill(ORDERS_TOKEN)
        form.get_by_role("button", name="Test connection").click()
        expect(page.locator("#source-url-test")).to_contain_text("The connection works: 3 rows.")
        expect(page.locator("#source-url-test table td", has_text="A-2")).to_be_visible()
        page.locator("#sources").screenshot(path=shots / "sources.png")
        form.get_by_role("button", name="Add data source").click()
        assert flash(page) == "Data source Orders API added."
        assert ORDERS_TOKEN not in page.content()
    page.locator("#p-key-1").fill("account")
    page.locator("#p-value-1").fill("journey-42")
    page.get_by_role("button", name="Save properties").click()
    assert flash(page) == "1 property saved."
    expect(page.locator("#p-value-1")).to_have_value("journey-42")


def test_a_partner_takes_a_client_from_setup_to_active_and_back_in_a_browser(
    browser, server_url, data_server, database, partner, db, clock, tmp_path, settings
):
    shots = Path(os.environ.get("TENANTRY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    started = time.time() - 1  # file times may be rounded down to the second
    email = admin_email(db, partner)
    db.rollback()
    csv_url = data_server.serve("/sales.csv", daily_csv(clock.now().date()))
    neighbours(server_url, partner.headers)
    violations: list[str] = []
    partner_context = watch_policy(
        browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900}), violations
    )
    page = partner_context.new_page()

    page.goto(server_url + "/login")
    page.screenshot(path=shots / "login.png")
    browser_sign_in(page, server_url, email, ADMIN_PASSWORD)
    expect(page).to_have_url(server_url + "/partner")

    # Create a client in Setup.
    page.get_by_role("link", name="Clients", exact=True).click()
    expect(page.get_by_role("row", name=re.compile("Fjord Freight"))).to_contain_text("Disabled")
    page.get_by_role("link", name="New client").click()
    page.get_by_label("Name").fill("Journey Coffee")
    page.get_by_label("Status").select_option("setup")
    page.get_by_role("button", name="Create client").click()
    assert flash(page) == "Client Journey Coffee created."
    client_url = page.url

    # A dashboard from a local CSV source (loaded here, as the worker would).
    page.get_by_text("Add a data source: a file at a URL", exact=True).click()
    page.locator("#source-url-name").fill("Sales feed")
    page.locator("#source-url-url").fill(csv_url)
    page.locator("#source-url").get_by_role("button", name="Add data source").click()
    assert flash(page) == "Data source Sales feed added."
    with database.session(write=True) as session:
        guard = Guard.from_settings(settings)
        source = session.scalars(select(DataSource)).one()
        outcome = refresh_source(
            session, source, clock.now(), lambda url, fmt: fetch_rows(url, fmt, guard=guard)
        )
        session.commit()
    assert outcome.ok, outcome.error
    page.reload()
    expect(page.get_by_text("60 rows")).to_be_visible()
    add_token_source(page, shots)
    page.locator("#new-name").fill("Sales board")
    page.get_by_role("button", name="Create dashboard").click()
    assert flash(page) == "Dashboard Sales board created."

    # Build it in the builder: three klips, one resized, and a date filter.
    page.get_by_role("link", name="Open the builder of Sales board").click()
    expect(page.get_by_role("heading", name="Sales board: builder")).to_be_visible()
    build_klips(page)
    expect(page.locator("#live figure.klip")).to_have_count(3)
    page.get_by_label("Width of By day").select_option("12")
    page.get_by_role("button", name="Resize By day").click()
    assert flash(page) == "Klip resized."
    expect(page.locator("#live figure.klip-bar.w-12")).to_have_count(1)
    page.get_by_text("Add a filter", exact=True).click()
    page.locator("#f-id").fill("period")
    page.locator("#f-column").select_option("day")
    page.locator("#f-label").fill("Period")
    page.get_by_role("button", name="Add filter").click()
    assert flash(page) == "Filter Period saved."
    page.get_by_role("link", name="Edit By day").click()
    expect(page.locator("#preview svg")).to_be_visible()
    page.screenshot(path=shots / "builder.png", full_page=True)
    page.get_by_role("link", name=re.compile("Back to Journey Coffee")).click()

    # Downloaded in Setup, it carries the watermark.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF of Sales board").click()
    pdf = Path(download.value.path()).read_bytes()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert "By day" in text and "SETUP MODE" in text

    # Active is blocked, and says why, until the allocation allows it.
    active_button = page.get_by_role("button", name="Make Active")
    expect(active_button).to_be_disabled()
    expect(page.get_by_text("Allocate at least one user.")).to_be_visible()
    page.get_by_role("spinbutton", name="Dashboards").fill("1")
    page.get_by_role("spinbutton", name="Users").fill("1")
    page.get_by_role("spinbutton", name="Published links").fill("1")
    page.get_by_role("button", name="Save allocation").click()
    assert flash(page) == "Allocation saved."
    expect(page.get_by_role("button", name="Make Active")).to_be_enabled()

    # Start the trial.
    page.get_by_role("button", name="Start the trial").click()
    assert flash(page) == "Journey Coffee is now Trial."

    # Add a user and share the dashboard with them.
    page.get_by_text("Add a user", exact=True).click()
    page.locator("#u-email").fill(USER_EMAIL)
    page.locator("#u-name").fill("Reader")
    page.locator("#u-role").select_option("admin")
    page.locator("#u-password").fill(USER_PASSWORD)
    page.get_by_role("button", name="Add user").click()
    assert flash(page) == "Reader added."
    page.get_by_label("Reader").check()
    page.get_by_role("button", name="Save sharing of Sales board").click()
    assert flash(page) == "Shared with 1 user."

    # The user signs in and sees the dashboard, with the trial's days left.
    user_context = watch_policy(browser.new_context(viewport={"width": 1280, "height": 900}), violations)
    portal = user_context.new_page()
    browser_sign_in(portal, server_url, USER_EMAIL, USER_PASSWORD)
    expect(portal).to_have_url(server_url + "/app")
    expect(portal.get_by_text("Trial: 14 days left.")).to_be_visible()
    portal.screenshot(path=shots / "portal.png", full_page=True)
    portal.get_by_role("link", name="Sales board", exact=True).click()
    expect(portal.locator("figure.klip")).to_have_count(3)
    expect(portal.locator("figure.klip-value")).to_contain_text("600")
    portal.screenshot(path=shots / "dashboard.png", full_page=True)

    # The user filters it: the last 7 days, kept in the address, the klips and the download.
    portal.get_by_label("Period", exact=True).select_option("last_7_days")
    portal.get_by_role("button", name="Apply filters").click()
    expect(portal).to_have_url(re.compile(r"f\.period=last_7_days"))
    expect(portal.locator("figure.klip-value")).to_contain_text("70")
    portal.screenshot(path=shots / "dashboard-filtered.png", full_page=True)
    with portal.expect_download() as filtered_download:
        portal.get_by_role("link", name="Download PDF").click()
    filtered_pdf = Path(filtered_download.value.path()).read_bytes()
    assert filtered_pdf.startswith(b"%PDF")
    filtered_text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(filtered_pdf)).pages)
    assert "Total sales" in filtered_text and "70" in filtered_text

    # Publish a link; anyone may open it.
    page.get_by_label("Name of a new link").fill("Lobby screen")
    page.get_by_role("button", name="Publish Sales board").click()
    found = re.search(r"/published/[A-Za-z0-9_-]+", flash(page))
    assert found is not None
    public = watch_policy(browser.new_context(), violations).new_page()
    assert public.goto(server_url + found.group(0)).status == 200
    expect(public.locator("figure.klip-bar")).to_contain_text("By day")
    # Opened with a filter in its address, the published page shows the klips filtered.
    assert public.goto(server_url + found.group(0) + "?f.period=last_30_days").status == 200
    expect(public.locator("figure.klip-value")).to_contain_text("300")
    expect(public.locator("select[name='f.period']")).to_have_value("last_30_days")

    # Extend the trial: once, and the list shows it.
    page.get_by_role("button", name="Extend trial by 14 days").click()
    assert flash(page).startswith("Trial extended until")
    expect(page.get_by_role("button", name="Extend trial by 14 days")).to_have_count(0)
    page.get_by_role("link", name="Clients", exact=True).click()
    row = page.get_by_role("row", name=re.compile("Journey Coffee"))
    expect(row).to_contain_text("28 days left")
    expect(row).to_contain_text("extended")
    page.screenshot(path=shots / "clients.png", full_page=True)

    # Its dashboards count their days in the client's own timezone; the audit log says who set it.
    page.goto(client_url)
    page.get_by_label("Timezone of its dashboards").fill("Asia/Tokyo")
    page.get_by_role("button", name="Save details").click()
    assert flash(page) == "Details saved."
    expect(page.get_by_label("Timezone of its dashboards")).to_have_value("Asia/Tokyo")
    expect(page.locator("#history")).to_contain_text("client.updated")

    # Activate.
    page.goto(client_url)
    page.get_by_role("button", name="Make Active").click()
    assert flash(page) == "Journey Coffee is now Active."
    page.screenshot(path=shots / "client.png", full_page=True)

    # Disable: the user is suspended and the link is dead.
    page.get_by_role("button", name="Disable").click()
    assert flash(page) == "Journey Coffee is now Disabled."
    portal.goto(server_url + "/app")
    expect(portal.get_by_role("alert")).to_have_text(SUSPENDED)
    assert public.goto(server_url + found.group(0)).status == 403

    # Re-activate: the link works again.
    page.get_by_role("button", name="Make Active").click()
    assert flash(page) == "Journey Coffee is now Active."
    assert public.goto(server_url + found.group(0)).status == 200

    page.get_by_role("link", name="Plan", exact=True).click()
    expect(page.get_by_role("img", name=re.compile("Dashboards: 0 yours, 3 allocated"))).to_be_visible()
    page.screenshot(path=shots / "plan.png", full_page=True)
    phone = watch_policy(
        browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, device_scale_factor=1),
        violations,
    )
    phone_page = phone.new_page()
    phone_page.context.add_cookies(partner_context.cookies())
    phone_page.goto(server_url + "/partner/clients")
    phone_page.screenshot(path=shots / "clients-phone.png", full_page=True)
    for context in (partner_context, user_context, public.context, phone):
        context.close()
    assert violations == []
    # Every main page photographed on this walk (the folder may hold the other journeys' too).
    assert all((shots / f"{name}.png").stat().st_mtime >= started for name in MAIN_PAGES)


def test_each_main_page_has_a_screenshot_in_the_docs():
    assert sorted(p.stem for p in DOCS.glob("*.png")) == sorted(MAIN_PAGES + OTHER_JOURNEYS_PAGES)

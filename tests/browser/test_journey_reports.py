"""Scheduled reports in a browser: a client's admin schedules a daily report of a dashboard from the
portal, picking a user of the client; the worker, on the fake clock moved to the slot, sends it to
a real SMTP server with the PDF attached, and the run shows in the page's history.

With TENANTRY_SCREENSHOTS=<dir> the page's screenshot is kept there as schedules.png (that is how
docs/screenshots/ is made)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import expect

from tests.content import pdf_text
from tests.factories import PASSWORD, add_user, new_client
from tests.pages import browser_sign_in, watch_policy

ROWS = [
    {"month": "Jan", "region": "North", "sales": 120},
    {"month": "Feb", "region": "South", "sales": 80},
    {"month": "Mar", "region": "North", "sales": 150},
]
KLIPS = [
    {"title": "Total", "kind": "value", "columns": {"value": "sales"}},
    {"title": "By month", "kind": "bar", "columns": {"x": "month", "y": "sales"}},
]


def test_a_client_admin_schedules_a_report_that_arrives_by_email(
    browser, server_url, partner, clock, smtp_server, make_worker, settings, tmp_path
):
    shots = Path(os.environ.get("TENANTRY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=server_url, headers=partner.headers) as api:
        client_id = new_client(api, partner, "active", users=3)
        admin = add_user(api, partner, client_id, "owner@shop.test")
        add_user(api, partner, client_id, "cfo@shop.test", role="member")
        source = api.post(
            f"/api/1/clients/{client_id}/datasources", json={"name": "Sales", "kind": "inline", "rows": ROWS}
        ).json()["id"]
        dashboard = api.post(
            f"/api/1/clients/{client_id}/dashboards",
            json={"name": "Monthly sales", "klips": [{**k, "datasource_id": source} for k in KLIPS]},
        ).json()["id"]
    violations: list[str] = []
    context = watch_policy(browser.new_context(), violations)
    page = context.new_page()
    browser_sign_in(page, server_url, admin["email"], PASSWORD)
    page.goto(f"{server_url}/app/dashboards/{dashboard}")
    page.get_by_role("link", name="Scheduled reports").click()
    expect(page.get_by_role("heading", name="Scheduled reports of “Monthly sales”")).to_be_visible()
    page.get_by_label("How often").select_option("daily")
    page.get_by_label("Time", exact=True).fill("09:00")
    page.get_by_label("Timezone").fill("Europe/Paris")
    page.get_by_label("cfo@shop.test").check()
    page.get_by_label("owner@shop.test").check()
    page.get_by_role("button", name="Schedule").click()
    # The clock reads 2026-03-10 12:00 UTC: 09:00 in Paris (UTC+1 in March) has passed today.
    expect(page.locator("main")).to_contain_text("it is first sent at 2026-03-11 08:00 UTC")
    expect(page.locator("main")).to_contain_text("Not run yet.")

    clock.advance(seconds=(datetime(2026, 3, 11, 8, 0, 30, tzinfo=UTC) - clock.now()).total_seconds())
    worker = make_worker(smtp_server.mailer, settings=settings)
    assert worker.run_reports() == 1  # the report's job sends its e-mail itself
    (message,) = [m for m in smtp_server.messages if m["Subject"] == "Monthly sales"]
    assert sorted(message["To"].split(", ")) == ["cfo@shop.test", "owner@shop.test"]
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert "By month" in pdf_text(attachment.get_content())

    # A day has passed on the clock: the session has ended, so sign in again.
    browser_sign_in(page, server_url, admin["email"], PASSWORD)
    page.goto(f"{server_url}/app/dashboards/{dashboard}/schedules")
    history = page.get_by_role("table", name="Last runs")
    expect(history).to_contain_text("2026-03-11 08:00 UTC")
    expect(history).to_contain_text("sent")
    expect(page.locator("main")).to_contain_text("Next run: 2026-03-12 08:00 UTC")
    page.screenshot(path=shots / "schedules.png", full_page=True)
    assert violations == []
    context.close()

"""Templates and bulk onboarding in a browser, as a partner walks them on the demo data: capture the
demo's "Store performance" dashboard as a template, deploy it to two clients (the dry run shown
first), change one copy by hand (shown as changed), update both copies with force; import a CSV
file with a bad line (its error shown), fix it and apply it; select two clients on the list and
change their status together (a dry run first).

With TENANTRY_SCREENSHOTS=<dir> the screenshots are kept there (templates.png, import.png,
clients-bulk.png; that is how docs/screenshots/ is made)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tenantry.demo import DEMO_EMAIL, DEMO_PASSWORD, load_demo
from tests.pages import browser_sign_in, watch_policy

BAD_CSV = (
    "name,external_id,status,dashboards,users\nGreen Grocers,GG-1,setup,1,1\nHarbor Hotel,HH-1,sleeping,1,1\n"
)
GOOD_CSV = BAD_CSV.replace("sleeping", "setup")


def flash(page: Page) -> str:
    return page.locator("main > p[role]").first.inner_text()


def upload(page: Page, text: str) -> None:
    page.get_by_label("CSV file", exact=True).set_input_files(
        files=[{"name": "clients.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.get_by_role("button", name="Preview the import").click()


def test_a_partner_deploys_a_template_imports_clients_and_changes_statuses_in_a_browser(
    browser, server_url, database, clock, tmp_path
):
    shots = Path(os.environ.get("TENANTRY_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    with database.session(write=True) as session:
        said = load_demo(session, clock, server_url)
        session.commit()
    found = re.search(r"API key \(partner admin\): (\S+)", said)
    assert found is not None
    api = httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {found.group(1)}"})
    violations: list[str] = []
    context = watch_policy(browser.new_context(viewport={"width": 1280, "height": 900}), violations)
    page = context.new_page()
    browser_sign_in(page, server_url, DEMO_EMAIL, DEMO_PASSWORD)
    expect(page).to_have_url(server_url + "/partner")

    # Capture the demo dashboard as a template.
    page.get_by_role("navigation", name="Partner console").get_by_role("link", name="Templates").click()
    page.get_by_label("Dashboard", exact=True).select_option(label="Store performance (Delta Dental)")
    page.get_by_role("button", name="Capture as a template").click()
    assert flash(page) == "Template Store performance captured."
    expect(page.get_by_role("heading", level=1)).to_have_text("Store performance")
    template_path = page.url.removeprefix(server_url)

    # Deploy it to two clients: the dry run first, then confirmed.
    picker = page.get_by_role("group", name="Clients")
    picker.get_by_label(re.compile("Acme Bakery")).check()
    picker.get_by_label(re.compile("Blue Fin Sushi")).check()
    page.get_by_role("button", name="Preview the deployment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Deploy Store performance: dry run")
    expect(page.get_by_role("cell", name="Would deploy")).to_have_count(2)
    page.get_by_role("button", name="Confirm: deploy to these clients").click()
    assert flash(page) == "Deployed to 2 clients."

    # A copy changed by hand shows as changed.
    acme = next(c for c in api.get("/api/1/clients").json()["items"] if c["name"] == "Acme Bakery")
    (copy,) = api.get(f"/api/1/clients/{acme['id']}/dashboards").json()["items"]
    assert api.patch(f"/api/1/dashboards/{copy['id']}", json={"name": "Acme's own"}).status_code == 200
    page.reload()
    acme_row = page.get_by_role("row").filter(has_text="Acme Bakery").filter(has=page.get_by_role("checkbox"))
    expect(acme_row.get_by_role("cell").nth(3)).to_have_text("Yes")
    page.screenshot(path=shots / "templates.png", full_page=True)

    # Update both copies, overwriting the changed one.
    page.get_by_label("Update the copy of Acme Bakery").check()
    page.get_by_label("Update the copy of Blue Fin Sushi").check()
    page.get_by_label("Overwrite copies changed by hand too").check()
    page.get_by_role("button", name=re.compile("^Update the selected instances")).click()
    assert flash(page) == "Updated the copies of 2 clients."
    assert page.url == server_url + template_path
    expect(page.get_by_role("cell", name="Yes")).to_have_count(0)
    assert api.get(f"/api/1/dashboards/{copy['id']}").json()["name"] == "Store performance"

    # Import clients: a bad line is shown with its error, nothing is created; fixed, then applied.
    page.get_by_role("link", name="Clients").first.click()
    page.get_by_role("link", name="Import clients").click()
    upload(page, BAD_CSV)
    expect(page.get_by_role("alert")).to_contain_text("1 line cannot be imported")
    expect(page.get_by_role("cell", name=re.compile("^unknown_status"))).to_be_visible()
    page.screenshot(path=shots / "import.png", full_page=True)
    assert api.get("/api/1/clients", params={"q": "Green"}).json()["items"] == []
    upload(page, GOOD_CSV)
    expect(page.get_by_role("status")).to_contain_text("2 clients would be created")
    page.get_by_role("button", name="Apply: create 2 clients").click()
    assert flash(page) == "2 clients created."

    # Select the two new clients and move them to Trial together: a dry run first.
    page.get_by_label("Select Green Grocers").check()
    page.get_by_label("Select Harbor Hotel").check()
    page.get_by_label("New status").select_option("trial")
    page.get_by_label("Reason (optional)").fill("Onboarded")
    page.get_by_role("button", name="Preview the change").click()
    expect(page.get_by_role("status")).to_contain_text("2 of 2 clients would move to Trial")
    page.screenshot(path=shots / "clients-bulk.png", full_page=True)
    page.get_by_role("button", name="Confirm: move them to Trial").click()
    assert flash(page) == "2 clients moved to Trial."
    statuses = {c["name"]: c["status"] for c in api.get("/api/1/clients").json()["items"]}
    assert statuses["Green Grocers"] == statuses["Harbor Hotel"] == "trial"

    context.close()
    api.close()
    assert violations == []

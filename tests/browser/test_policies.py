"""The security policies as Chromium enforces them: other sites cannot frame the console, may frame
a published page unless its link names the sites that may, the published and portal pages still
update themselves under their policies, and the API docs load nothing from another server."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Browser, Frame, expect

from tenantry.dashboards import live
from tests.factories import ADMIN_PASSWORD, PASSWORD, add_user, admin_email
from tests.pages import browser_sign_in, watch_policy

ONE_EACH = {"dashboards": 1, "users": 1, "published_links": 1}


def published_dashboard(api: httpx.Client, **link: object) -> tuple[int, int, str]:
    """An Active client's dashboard (from an inline source) and a published link to it: the source's
    id, the dashboard's and the link's path."""
    client_id = api.post(
        "/api/1/clients", json={"name": "Framed", "status": "active", "resources": ONE_EACH}
    ).json()["id"]
    source_id = _source(api, client_id)
    klips = [{"title": "Total", "kind": "value", "columns": {"value": "sales"}}]
    dashboard = api.post(
        f"/api/1/clients/{client_id}/dashboards",
        json={"name": "Wallboard", "klips": [{**klips[0], "datasource_id": source_id}]},
    ).json()
    created = api.post(f"/api/1/dashboards/{dashboard['id']}/published-links", json={"name": "Wall", **link})
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    return source_id, dashboard["id"], url[url.index("/published/") :]


def _source(api: httpx.Client, client_id: int) -> int:
    response = api.post(
        f"/api/1/clients/{client_id}/datasources",
        json={"name": "Sales", "kind": "inline", "rows": [{"sales": 120}]},
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def shows(frame: Frame | None, text: str) -> bool:
    return frame is not None and text in frame.content()


def test_other_sites_cannot_frame_the_console_and_frame_published_pages_only_where_allowed(
    browser: Browser, server_url, data_server, partner
):
    other_site = data_server.base  # another port: another origin
    with httpx.Client(base_url=server_url, headers=partner.headers) as api:
        _, _, anywhere = published_dashboard(api)
        _, _, allowed = published_dashboard(api, allowed_origins=[other_site])
        _, _, elsewhere = published_dashboard(api, allowed_origins=["https://intranet.example"])
    frames = {"login": "/login", "anywhere": anywhere, "allowed": allowed, "elsewhere": elsewhere}
    html = "".join(
        f'<iframe name="{name}" src="{server_url}{path}"></iframe>' for name, path in frames.items()
    )
    embedding = data_server.serve(
        "/embed.html", f"<!doctype html><title>Another site</title>{html}", "text/html"
    )
    violations: list[str] = []
    page = watch_policy(browser.new_context(), violations).new_page()
    page.goto(embedding)
    page.wait_for_load_state("load")
    assert shows(page.frame(name="anywhere"), "Wallboard")
    assert shows(page.frame(name="allowed"), "Wallboard")
    assert not shows(page.frame(name="elsewhere"), "Wallboard")
    assert not shows(page.frame(name="login"), "Sign in")
    # Exactly the two refusals, each by the policy meant to refuse it.
    assert len(violations) == 2, violations
    assert any("frame-ancestors 'none'" in v for v in violations)
    assert any("frame-ancestors https://intranet.example" in v for v in violations)
    page.context.close()


def test_the_portal_and_a_published_page_update_themselves_under_their_policies(
    browser: Browser, server_url, partner, db, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("tenantry.web.portal.POLL_SECONDS", 1)
    monkeypatch.setattr("tenantry.links.web.POLL_SECONDS", 1)
    with httpx.Client(base_url=server_url, headers=partner.headers) as api:
        source_id, dashboard_id, path = published_dashboard(api)
        client_id = api.get(f"/api/1/dashboards/{dashboard_id}").json()["client_id"]
        user = add_user(api, partner, client_id, "viewer@framed.test")
        api.put(f"/api/1/dashboards/{dashboard_id}/shares", json={"user_ids": [user["id"]]})
        violations: list[str] = []
        context = watch_policy(browser.new_context(), violations)
        public = context.new_page()
        public.goto(server_url + path)
        expect(public.locator("main")).to_contain_text("120")
        portal = watch_policy(browser.new_context(), violations).new_page()
        browser_sign_in(portal, server_url, "viewer@framed.test", PASSWORD)
        portal.goto(f"{server_url}/app/dashboards/{dashboard_id}")
        expect(portal.locator("#live")).to_contain_text("120")
        changed = api.patch(f"/api/1/datasources/{source_id}", json={"rows": [{"sales": 987}]})
        assert changed.status_code == 200, changed.text
    expect(public.locator("main")).to_contain_text("987", timeout=10_000)
    expect(portal.locator("#live")).to_contain_text("987", timeout=10_000)
    assert violations == []
    assert live.POLL_SECONDS == 15  # the pages polled fast only because the test asked them to


def test_the_api_docs_render_the_operations_with_nothing_from_another_server(browser: Browser, server_url):
    violations: list[str] = []
    context = watch_policy(browser.new_context(), violations)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(server_url + "/api/1/docs")
    expect(page.locator(".opblock-summary-path", has_text="/api/1/clients").first).to_be_visible()
    expect(page.get_by_role("heading", name=re.compile("Tenantry"))).to_be_visible()
    outside = [url for url in requested if not url.startswith((server_url + "/", "data:"))]
    assert outside == []
    assert server_url + "/api/1/openapi.json" in requested
    assert violations == []
    context.close()


def test_signing_in_works_under_the_policy(browser: Browser, server_url, partner, db):
    """The sign-in form posts and redirects within the form-action of its policy."""
    email = admin_email(db, partner)
    db.rollback()
    violations: list[str] = []
    page = watch_policy(browser.new_context(), violations).new_page()
    browser_sign_in(page, server_url, email, ADMIN_PASSWORD)
    expect(page).to_have_url(server_url + "/partner")
    page.goto(server_url + "/")
    expect(page).to_have_url(server_url + "/partner")
    assert violations == []
    page.context.close()

"""The partner's own dashboards in the console (/partner/dashboards): listed with their builder,
created empty and opened in the builder; viewers only look; a refused form creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD, add_partner_viewer, csrf_of, sign_in


def own_dashboards(http: Any, partner: Any) -> list[dict[str, Any]]:
    answer = http.get("/api/1/partner/dashboards", headers=partner.headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


@pytest.mark.usefixtures("partner_session")
class TestTheConsolesOwnDashboards:
    def test_a_new_dashboard_is_created_empty_and_opened_in_the_builder(self, http, partner):
        page = http.get("/partner/dashboards")
        assert page.status_code == 200 and "No dashboards of your own yet." in page.text
        created = http.post(
            "/partner/dashboards",
            data={"name": "Agency overview", "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
        assert created.status_code == 303
        (dashboard,) = own_dashboards(http, partner)
        assert dashboard["name"] == "Agency overview" and dashboard["client_id"] is None
        assert created.headers["location"] == f"/partner/dashboards/{dashboard['id']}/builder"
        assert http.get(created.headers["location"]).status_code == 200
        listed = http.get("/partner/dashboards").text
        assert "Agency overview" in listed
        assert f'href="/partner/dashboards/{dashboard["id"]}/builder"' in listed

    def test_a_console_menu_links_the_page(self, http):
        assert 'href="/partner/dashboards"' in http.get("/partner").text

    @pytest.mark.parametrize(
        ("form", "why"),
        [
            ({"name": ""}, "empty name"),
            ({"name": "a\x00b"}, "control character"),
            ({"name": "x" * 201}, "too long"),
        ],
    )
    def test_a_bad_name_is_refused_and_creates_nothing(self, http, partner, form, why):
        page = http.get("/partner/dashboards")
        answer = http.post("/partner/dashboards", data={**form, "csrf_token": csrf_of(page.text)})
        # Back to the page, with the sentence saying why.
        assert answer.url.path == "/partner/dashboards" and 'role="alert"' in answer.text, why
        assert own_dashboards(http, partner) == []

    def test_a_form_without_its_csrf_token_is_refused_and_creates_nothing(self, http, partner):
        answer = http.post("/partner/dashboards", data={"name": "Forged"}, follow_redirects=False)
        assert answer.status_code == 403
        assert own_dashboards(http, partner) == []


def test_a_partner_viewer_sees_the_list_without_the_form_and_cannot_create(http, partner, database, clock):
    add_partner_viewer(database, partner, clock)
    assert sign_in(http, "viewer@partner.test", PASSWORD).status_code == 303
    page = http.get("/partner/dashboards")
    assert page.status_code == 200 and 'action="/partner/dashboards"' not in page.text
    refused = http.post("/partner/dashboards", data={"name": "Mine", "csrf_token": csrf_of(page.text)})
    assert refused.url.path == "/partner/dashboards" and 'role="alert"' in refused.text
    assert own_dashboards(http, partner) == []

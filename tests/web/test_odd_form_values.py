"""SPEC §12 in the console's and the portal's forms and pages: a number no row can have, or a
digit that is no ASCII digit ("²", which `str.isdigit` takes and `int` does not), gets a clear
refusal, never a 500, and changes nothing."""

from __future__ import annotations

import pytest

from tests.content import create_dashboard, inline_source
from tests.factories import add_user, csrf_of, enter, new_client

HUGE = "99999999999999999999999"  # more than a 64-bit integer holds
SUPERSCRIPT_TWO = "\u00b2"  # str.isdigit() is True, int() refuses it


@pytest.fixture
def board(http, partner, partner_session):
    """A Trial client with a user, an inline source and a dashboard: (client_id, user_id, dashboard_id)."""
    client_id = new_client(http, partner, "trial", dashboards=5, users=5, published_links=5)
    user = add_user(http, partner, client_id, "u@client.test")
    source_id = inline_source(http, partner, client_id)
    response = create_dashboard(http, partner, client_id, source_id)
    assert response.status_code == 201, response.text
    return client_id, user["id"], response.json()["id"]


def schedules_of(http, partner, dashboard_id: int) -> int:
    response = http.get(f"/api/1/dashboards/{dashboard_id}/schedules", headers=partner.headers)
    return int(response.json()["total"]) if response.status_code == 200 else -1


class TestClientsList:
    def test_a_page_number_of_a_unicode_digit_is_not_a_500(self, http, partner_session):
        response = http.get("/partner/clients", params={"page": SUPERSCRIPT_TWO})
        assert response.status_code < 500, response.text


class TestSchedules:
    @pytest.mark.parametrize(
        ("field", "frequency"), [("weekday", "weekly"), ("day_of_month", "monthly"), ("user_ids", "daily")]
    )
    def test_a_unicode_digit_in_a_number_field_of_the_console_form_is_not_a_500(
        self, http, partner, board, field, frequency
    ):
        _, _, dashboard_id = board
        page = f"/partner/dashboards/{dashboard_id}/schedules"
        form = {"csrf_token": csrf_of(http.get(page).text), "frequency": frequency, "time": "08:00"}
        before = schedules_of(http, partner, dashboard_id)
        response = http.post(page, data={**form, field: SUPERSCRIPT_TWO}, follow_redirects=False)
        assert response.status_code < 500, response.text
        assert schedules_of(http, partner, dashboard_id) == before

    def test_a_unicode_digit_in_the_portal_form_is_not_a_500(self, http, partner, board):
        client_id, _, dashboard_id = board
        assert enter(http, client_id).status_code == 303
        page = f"/app/dashboards/{dashboard_id}/schedules"
        form = {"csrf_token": csrf_of(http.get(page).text), "frequency": "monthly", "time": "08:00"}
        before = schedules_of(http, partner, dashboard_id)
        response = http.post(page, data={**form, "day_of_month": SUPERSCRIPT_TWO}, follow_redirects=False)
        assert response.status_code < 500, response.text
        assert schedules_of(http, partner, dashboard_id) == before


class TestShares:
    def test_sharing_with_a_user_id_too_large_for_the_database_is_not_a_500(self, http, partner, board):
        client_id, _, dashboard_id = board
        page = f"/partner/clients/{client_id}"
        dashboard = f"/api/1/dashboards/{dashboard_id}"
        before = http.get(dashboard, headers=partner.headers).json()["shared_with"]
        form = {"csrf_token": csrf_of(http.get(page).text), "user_ids": HUGE}
        response = http.post(f"{page}/dashboards/{dashboard_id}/shares", data=form, follow_redirects=False)
        assert response.status_code < 500, response.text
        assert http.get(dashboard, headers=partner.headers).json()["shared_with"] == before


class TestBuilderForm:
    @pytest.mark.parametrize("side", ["console", "portal"])
    def test_a_data_source_id_too_large_for_the_database_is_not_a_500(self, http, board, side):
        client_id, _, dashboard_id = board
        if side == "portal":
            assert enter(http, client_id).status_code == 303
        base = f"/{'partner' if side == 'console' else 'app'}/dashboards/{dashboard_id}/builder"
        form = {
            "csrf_token": csrf_of(http.get(base).text),
            "title": "T",
            "kind": "value",
            "datasource_id": HUGE,
        }
        response = http.post(f"{base}/form", data=form, follow_redirects=False)
        assert response.status_code < 500, response.text

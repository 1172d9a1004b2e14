"""The Schedules page of a dashboard, in the portal and the console: the list with next run and
last runs, the create form (users ticked, other addresses for partner users only), delete."""

from __future__ import annotations

from tests.content import portal_dashboard
from tests.factories import PASSWORD, client_with_user, enter, post_form, sign_in


def client_admin_schedules(http, partner, clock) -> tuple[str, dict]:
    """A client admin signed in: the Schedules page of a dashboard of theirs, and the admin."""
    client_id, user, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
    board, _ = portal_dashboard(http, partner, client_id)
    sign_in(http, "admin@client.test", PASSWORD)
    return f"/app/dashboards/{board}/schedules", user


def test_a_client_admin_schedules_a_report_to_a_user_and_sees_its_next_run(http, partner, clock):
    page, user = client_admin_schedules(http, partner, clock)
    shown = http.get(page).text
    assert "No report is scheduled." in shown
    assert 'name="emails"' not in shown  # other addresses are for partner users
    answer = post_form(
        http,
        page,
        page,
        frequency="weekly",
        weekday="2",
        time="07:45",
        timezone="UTC",
        format="pdf",
        user_ids=str(user["id"]),
    )
    assert answer.headers["location"] == page
    text = http.get(page).text
    assert "it is first sent at 2026-03-11 07:45 UTC" in text
    assert "Every Wednesday at 07:45 (UTC), PDF" in text
    assert "To: admin@client.test" in text
    assert "Not run yet." in text


def test_a_bad_time_is_refused_in_words_and_nothing_is_stored(http, partner, clock):
    page, user = client_admin_schedules(http, partner, clock)
    post_form(http, page, page, frequency="daily", time="25:00", format="pdf", user_ids=str(user["id"]))
    text = http.get(page).text
    assert 'class="error"' in text and "time" in text
    assert "No report is scheduled." in text


def test_a_client_admin_may_not_add_outside_addresses_even_by_hand(http, partner, clock):
    page, _ = client_admin_schedules(http, partner, clock)
    post_form(http, page, page, frequency="daily", time="09:00", format="pdf", emails="x@elsewhere.test")
    text = http.get(page).text
    assert 'class="error"' in text and "recipients.emails" in text
    assert "No report is scheduled." in text


def test_a_partner_schedules_in_the_console_to_any_address_and_deletes_it(partner_session, partner, clock):
    http = partner_session
    client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
    board, _ = portal_dashboard(http, partner, client_id)
    assert f"/partner/dashboards/{board}/schedules" in http.get(f"/partner/clients/{client_id}").text
    page = f"/partner/dashboards/{board}/schedules"
    assert 'name="emails"' in http.get(page).text
    post_form(
        http,
        page,
        page,
        frequency="monthly",
        day_of_month="28",
        time="06:00",
        format="png",
        emails="cfo@client.test\nboard@client.test",
    )
    text = http.get(page).text
    assert "On day 28 of every month at 06:00 (UTC), PNG" in text
    assert "To: cfo@client.test, board@client.test" in text
    schedule_id = http.get(f"/api/1/dashboards/{board}/schedules", headers=partner.headers).json()["items"][
        0
    ]["id"]
    post_form(http, f"{page}/{schedule_id}/delete", page)
    assert "No report is scheduled." in http.get(page).text


def test_another_clients_dashboard_has_no_schedules_page(http, partner, clock):
    client_with_user(http, partner, clock, "active", "admin@client.test")
    other_client, _, _ = client_with_user(http, partner, clock, "active", "admin@other.test")
    board, _ = portal_dashboard(http, partner, other_client)
    sign_in(http, "admin@client.test", PASSWORD)
    response = http.get(f"/app/dashboards/{board}/schedules")
    assert response.status_code == 404


def test_a_partner_signed_in_as_the_client_sees_the_portal_page(partner_session, partner, clock):
    http = partner_session
    client_id, _, _ = client_with_user(http, partner, clock, "active", "admin@client.test")
    board, _ = portal_dashboard(http, partner, client_id)
    enter(http, client_id)
    shown = http.get(f"/app/dashboards/{board}").text
    assert f"/app/dashboards/{board}/schedules" in shown
    assert "Schedule a report" in http.get(f"/app/dashboards/{board}/schedules").text

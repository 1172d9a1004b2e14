"""The console's Statements page (seed: Setup and Trial cost nothing; SPEC §7)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import ADMIN_PASSWORD, PASSWORD, admin_email, client_with_user, sign_in


@pytest.fixture
def clock(clock):
    clock.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    return clock


def test_the_page_shows_the_lines_a_status_strip_per_client_and_links_the_csv(http, partner, clock, db):
    created = http.post(
        "/api/1/clients",
        json={"name": "Paying Client", "status": "active", "resources": {"dashboards": 2, "users": 1}},
        headers=partner.headers,
    )
    assert created.status_code == 201
    http.post("/api/1/clients", json={"name": "Trying Client", "status": "trial"}, headers=partner.headers)
    clock.advance(timedelta(days=10))
    email = admin_email(db, partner)
    db.rollback()
    assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303

    page = http.get("/partner/statements?month=2026-03")
    assert page.status_code == 200
    assert "Statement for 2026-03" in page.text
    assert "Paying Client" in page.text
    # Now is 11 March at noon: the client was Active during 11 days, so 2 × 10.00 × 11/31 to date.
    assert "<td>11 / 31</td><td>10.00</td><td>7.10</td>" in page.text
    assert 'aria-label="Paying Client: Active 11 days, not yet 20 days"' in page.text
    assert 'aria-label="Trying Client: Trial 11 days, not yet 20 days"' in page.text
    csv = http.get("/api/1/partner/statements/2026-03?format=csv")
    assert csv.status_code == 200
    assert csv.text.splitlines()[0].startswith("client_id,client_name,resource")


@pytest.mark.parametrize(
    ("now", "opens_on"),
    [
        # Moved at noon on 31 March to Kiritimati (UTC+14), where it is already 1 April: the new
        # timezone waits for April, which begins at midnight UTC, so March is still in progress.
        (datetime(2026, 3, 31, 12, tzinfo=UTC), "2026-03"),
        (datetime(2026, 3, 31, 23, 59, tzinfo=UTC), "2026-03"),
        (datetime(2026, 4, 1, tzinfo=UTC), "2026-04"),
        # April ends at Kiritimati's midnight: 10:00 UTC on 30 April.
        (datetime(2026, 4, 30, 10, tzinfo=UTC), "2026-05"),
    ],
)
def test_the_page_opens_on_the_month_in_progress_in_the_timezone_in_force(
    http, partner, clock, db, now, opens_on
):
    clock.set(datetime(2026, 3, 31, 12, tzinfo=UTC))
    moved = http.patch("/api/1/partner", json={"timezone": "Pacific/Kiritimati"}, headers=partner.headers)
    assert moved.status_code == 200
    clock.set(now)
    email = admin_email(db, partner)
    db.rollback()
    assert sign_in(http, email, ADMIN_PASSWORD).status_code == 303
    page = http.get("/partner/statements")
    assert page.status_code == 200
    assert f"<h1>Statement for {opens_on}</h1>" in page.text


@pytest.mark.usefixtures("partner_session")
def test_a_malformed_month_is_a_plain_sentence(http):
    page = http.get("/partner/statements?month=2026-13")
    assert page.status_code == 422
    assert "is not a month" in page.text


def test_a_client_user_is_sent_to_the_portal(http, partner, clock):
    client_with_user(http, partner, clock, "active", "user@client.test")
    sign_in(http, "user@client.test", PASSWORD)
    response = http.get("/partner/statements", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/app"


def test_without_signing_in_the_page_asks_for_it(http):
    response = http.get("/partner/statements", follow_redirects=False)
    assert response.headers["location"] == "/login"

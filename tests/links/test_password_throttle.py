"""Wrong passwords on a published link (SPEC §12): 5 per link and address lock that pair for 15
minutes, so a guesser locks out only their own address, never the link's viewers elsewhere; 100
from all addresses together close the link to new passwords for 15 minutes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.content import dashboard_in

PASSWORD = "open sesame"


@pytest.fixture
def link(http, partner) -> str:
    _, _, dashboard_id = dashboard_in(http, partner, "active")
    created = http.post(
        f"/api/1/dashboards/{dashboard_id}/published-links",
        json={"name": "Board room", "password": PASSWORD},
        headers=partner.headers,
    )
    assert created.status_code == 201, created.text
    return "/published/" + created.json()["url"].rsplit("/", 1)[1]


@pytest.fixture
def browser(app) -> Iterator[Callable[[str], TestClient]]:  # type: ignore[no-untyped-def]
    """A browser connecting from the given address (no proxy in between)."""
    opened: list[TestClient] = []

    def at(address: str) -> TestClient:
        client = TestClient(app, client=(address, 50000))
        opened.append(client.__enter__())
        return client

    yield at
    for client in opened:
        client.__exit__(None, None, None)


def test_guesses_from_one_address_do_not_lock_out_the_links_viewers_elsewhere(link, browser):
    guesser, viewer = browser("203.0.113.66"), browser("198.51.100.7")
    codes = [guesser.post(link, data={"password": f"guess {n}"}).status_code for n in range(6)]
    assert codes == [401] * 5 + [429]
    assert guesser.post(link, data={"password": PASSWORD}).status_code == 429
    opened = viewer.post(link, data={"password": PASSWORD}, follow_redirects=False)
    assert opened.status_code == 303
    assert viewer.get(link).text.count("<svg") == 5


def test_the_locked_address_is_told_how_long_to_wait(link, browser, clock):
    guesser = browser("203.0.113.66")
    for n in range(5):
        guesser.post(link, data={"password": f"guess {n}"})
    locked = guesser.post(link, data={"password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many wrong passwords. Try again in 15 minutes." in locked.text
    assert locked.headers["Retry-After"] == "900"
    assert locked.headers["X-Robots-Tag"] == "noindex, nofollow"
    clock.advance(timedelta(minutes=15))
    assert guesser.post(link, data={"password": PASSWORD}, follow_redirects=False).status_code == 303


def test_a_hundred_failures_from_many_addresses_close_the_link_to_new_passwords_for_a_while(
    link, browser, clock
):
    for a in range(20):
        guesser = browser(f"203.0.113.{a + 1}")
        assert [guesser.post(link, data={"password": f"guess {n}"}).status_code for n in range(5)] == [
            401
        ] * 5
    viewer = browser("198.51.100.7")
    assert viewer.post(link, data={"password": PASSWORD}).status_code == 429
    clock.advance(timedelta(minutes=15))
    assert viewer.post(link, data={"password": PASSWORD}, follow_redirects=False).status_code == 303


def test_a_viewer_who_already_gave_the_password_keeps_seeing_the_link_during_a_lock(link, browser):
    viewer = browser("198.51.100.7")
    assert viewer.post(link, data={"password": PASSWORD}, follow_redirects=False).status_code == 303
    for a in range(20):
        guesser = browser(f"203.0.113.{a + 1}")
        for n in range(5):
            guesser.post(link, data={"password": f"guess {n}"})
    assert viewer.get(link).status_code == 200

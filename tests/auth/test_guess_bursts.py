"""Password guesses arriving all at once (SPEC §12): at most five are ever checked.

Two real servers on loopback (uvicorn in threads), each with its own app and its own connection
pool, as two processes would be, take a burst of wrong passwords at the same moment. A guess that
was checked is answered 401, one refused before any check 429. The suite runs this on SQLite
and, with TENANTRY_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tenantry.app import create_app
from tenantry.auth.sessions import CSRF_COOKIE
from tenantry.db.models import PartnerUser
from tenantry.db.session import Database
from tests.content import dashboard_in
from tests.factories import csrf_of
from tests.servers import live_server


@pytest.fixture
def servers(settings, clock, database, database_url) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    other = Database(database_url)
    first = create_app(settings, clock=clock, database=database)
    second = create_app(settings, clock=clock, database=other)
    try:
        with live_server(first, proxy_headers=False) as one, live_server(second, proxy_headers=False) as two:
            yield [one, two]
    finally:
        other.dispose()


def at_once(servers: list[str], count: int, send, path: str) -> Counter[int]:  # type: ignore[no-untyped-def]
    """`count` requests, alternating between the servers, all started together.

    Each server first answers one refused request to `path` alone (no CSRF token, or no such
    link: nothing is counted): FastAPI prepares its routes on first use, which is not what is
    measured here.
    """
    for server in servers:
        with httpx.Client(base_url=server, timeout=60) as client:
            assert client.post(path, data={}).status_code in (403, 404)

    def one(n: int) -> int:
        with httpx.Client(base_url=servers[n % len(servers)], timeout=60) as client:
            return int(send(client, n).status_code)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return Counter(pool.map(one, range(count)))


def test_twenty_five_wrong_passwords_at_once_get_five_checked_and_the_rest_refused(servers, partner, db):
    email = db.get(PartnerUser, partner.admin_user_id).email
    db.rollback()
    with httpx.Client(base_url=servers[0]) as browser:
        page = browser.get("/login")
        csrf, cookie = csrf_of(page.text), browser.cookies[CSRF_COOKIE]

    def guess(client: httpx.Client, n: int) -> httpx.Response:
        client.cookies.set(CSRF_COOKIE, cookie)
        return client.post("/login", data={"email": email, "password": f"guess {n}", "csrf_token": csrf})

    assert at_once(servers, 25, guess, "/login") == {401: 5, 429: 20}
    with httpx.Client(base_url=servers[1]) as owner:
        owner.cookies.set(CSRF_COOKIE, cookie)
        form = {"email": email, "password": "correct horse battery", "csrf_token": csrf}
        assert owner.post("/login", data=form).status_code == 429  # the pair stays locked


def test_sixty_wrong_link_passwords_at_once_get_five_checked_and_the_rest_refused(servers, http, partner):
    _, _, dashboard_id = dashboard_in(http, partner, "active")
    created = http.post(
        f"/api/1/dashboards/{dashboard_id}/published-links",
        json={"name": "Board room", "password": "open sesame"},
        headers=partner.headers,
    )
    link = "/published/" + created.json()["url"].rsplit("/", 1)[1]

    def guess(client: httpx.Client, n: int) -> httpx.Response:
        return client.post(link, data={"password": f"guess {n}"})

    assert at_once(servers, 60, guess, "/published/" + "x" * 43) == {401: 5, 429: 55}
    with httpx.Client(base_url=servers[1]) as viewer:
        assert viewer.post(link, data={"password": "open sesame"}).status_code == 429

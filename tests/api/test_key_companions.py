"""A route's read made part of the API key's statement (`auth.repository.KeyCompanion`): one round
trip to the database for `GET /api/1/clients/{id}` and `GET /api/1/me`, and the same answers, refusals
included, as the route's own read gives."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tenantry.api.deps import KeyCompanions
from tenantry.auth import repository as auth_repo
from tenantry.clients import repository as clients_repo
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import _Together
from tenantry.meter import counters
from tenantry.users import repository as users_repo
from tests.factories import client_with_user, new_client

STATUSES = ["trial", "trial_expired", "active", "disabled"]


class CountingReads:
    """The app's `db.reads`, noting every statement a request runs on it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.ran = inner, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        self.ran.append(query)
        return await self.inner.run(query, **params)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self.inner.connection() as reads:
            yield _Counted(reads, self.ran)

    def together(self) -> Any:
        return _Counted(self.inner.together(), self.ran)


class _Counted:
    def __init__(self, reads: Any, ran: list[PreparedSelect]) -> None:
        self.reads, self.ran = reads, ran

    async def run(self, query: PreparedSelect, **params: Any) -> list[Any]:
        self.ran.append(query)
        return await self.reads.run(query, **params)


@pytest.fixture
def counted(app: Any) -> CountingReads:
    services = app.state.services
    services.reads = CountingReads(services.reads)
    return services.reads


def database_statements(ran: list[PreparedSelect]) -> list[PreparedSelect]:
    """What a request asked of the database, but the meter's count (no Redis: the database counts)."""
    return [query for query in ran if query is not counters._COUNT_ONE]


def answer(response: Any) -> tuple[int, str | None, bytes]:
    # A client key's own call is counted before it is answered: the count moves on by one.
    body = re.sub(rb'"api_calls_today":\d+', b'"api_calls_today":N', response.content)
    return response.status_code, response.headers.get("content-type"), body


def test_a_client_read_with_a_partner_key_is_one_statement(http, partner, counted):
    client_id = new_client(http, partner, "active")
    counted.ran.clear()
    response = http.get(f"/api/1/clients/{client_id}", headers=partner.headers)
    assert response.status_code == 200 and response.json()["id"] == client_id
    assert database_statements(counted.ran) == [clients_repo.CLIENT_WITH_KEY.lookup]


@pytest.mark.parametrize("key", ["partner", "client"])
def test_me_is_one_statement_whatever_the_key(http, partner, clock, counted, key):
    _, _, client_key = client_with_user(http, partner, clock, "trial", "me@client.test")
    headers = partner.headers if key == "partner" else client_key
    counted.ran.clear()
    response = http.get("/api/1/me", headers=headers)
    assert response.status_code == 200 and response.json()["user"]["kind"] == f"{key}_user"
    assert database_statements(counted.ran) == [users_repo.ME_WITH_KEY.lookup]


def test_any_other_api_request_reads_the_key_alone(http, partner, counted):
    new_client(http, partner, "active")
    counted.ran.clear()
    assert http.get("/api/1/clients", headers=partner.headers).status_code == 200
    assert counted.ran[:1] == [auth_repo._KEY_LOOKUP]


@pytest.mark.parametrize("status", STATUSES)
def test_every_answer_is_the_one_the_routes_own_read_gives(
    app, http, partner, make_partner, clock, status, monkeypatch
):
    client_id, _, client_key = client_with_user(http, partner, clock, status, f"{status}@client.test")
    sibling = new_client(http, partner, "active")
    stranger = make_partner()
    foreign = new_client(http, stranger, "active")
    asked = [
        (f"/api/1/clients/{client_id}", partner.headers),
        (f"/api/1/clients/{client_id}", client_key),  # a client key reading its own client
        (f"/api/1/clients/{sibling}", client_key),  # another client of its partner: 404
        (f"/api/1/clients/{foreign}", partner.headers),  # another partner's client: 404
        (f"/api/1/clients/{foreign}", stranger.headers),
        (f"/api/1/clients/{client_id}", stranger.headers),
        (f"/api/1/clients/{client_id + 10_000}", partner.headers),  # no such client: 404
        (f"/api/1/clients/00{client_id}", partner.headers),  # the same id, as the route reads it
        (f"/api/1/clients/-{client_id}", partner.headers),
        ("/api/1/clients/99999999999999999999", partner.headers),  # out of range: 422
        ("/api/1/clients/1e3", partner.headers),
        ("/api/1/me", client_key),
        ("/api/1/me", partner.headers),
        ("/api/1/me", stranger.headers),
    ]
    through_companions = [answer(http.get(path, headers=headers)) for path, headers in asked]
    monkeypatch.setattr(KeyCompanions, "asked", lambda self, scope: None)
    through_routes = [answer(http.get(path, headers=headers)) for path, headers in asked]
    for (path, _), a, b in zip(asked, through_companions, through_routes, strict=True):
        assert a == b, path
    assert [status for status, _, _ in through_routes[:7]] == [
        *([200, 200, 404] if status in ("trial", "active") else [200, 403, 403]),
        404, 200, 404, 404,
    ]  # fmt: skip


def test_a_revoked_key_is_refused_in_the_statement_that_reads_its_companion(
    http, partner, add_partner_user, counted
):
    headers = add_partner_user(partner, "admin")
    client_id = new_client(http, partner, "active")
    listed = http.get("/api/1/me/api-keys", headers=headers).json()["items"]
    assert http.delete(f"/api/1/me/api-keys/{listed[0]['id']}", headers=headers).status_code == 204
    for path, companion in (
        (f"/api/1/clients/{client_id}", clients_repo.CLIENT_WITH_KEY),
        ("/api/1/me", users_repo.ME_WITH_KEY),
    ):
        counted.ran.clear()
        refused = http.get(path, headers=headers)
        assert refused.status_code == 401, path
        assert refused.json()["detail"] == auth_repo._INVALID
        assert counted.ran == [companion.lookup]


@pytest.mark.parametrize(("written", "expected"), [("+{}", 200), (" {}", 200), ("{}_0", 404), ("1e3", 422)])
def test_an_id_written_otherwise_is_read_by_the_route_itself(http, partner, counted, written, expected):
    client_id = new_client(http, partner, "active")
    counted.ran.clear()
    response = http.get("/api/1/clients/" + written.format(client_id), headers=partner.headers)
    assert clients_repo.CLIENT_WITH_KEY.lookup not in counted.ran
    assert counted.ran[0] is auth_repo._KEY_LOOKUP
    assert response.status_code == expected  # what FastAPI makes of it, as before


def test_a_client_read_with_its_count_of_calls_today_is_one_statement(http, partner, clock, counted):
    client_id, _, client_key = client_with_user(http, partner, clock, "active", "count@client.test")
    for _ in range(3):
        assert http.get("/api/1/me", headers=client_key).status_code == 200
    counted.ran.clear()
    response = http.get(f"/api/1/clients/{client_id}", headers=partner.headers)
    assert response.json()["usage"]["api_calls_today"] == 3
    # The database counter's count is read in the key's statement; Redis's is not a statement.
    assert counted.ran == [clients_repo.CLIENT_WITH_KEY.lookup]


@pytest.mark.parametrize(
    ("moved", "expected"),
    [
        pytest.param(timedelta(0), 3, id="calls counted today"),
        pytest.param(timedelta(days=1), 0, id="calls counted on an earlier day only"),
        pytest.param(timedelta(days=-2), 0, id="calls counted on a later day only (a clock set back)"),
    ],
)
def test_the_count_of_calls_today_read_beside_the_key_is_the_one_the_meter_reads(
    http, partner, clock, monkeypatch, moved, expected
):
    client_id, _, client_key = client_with_user(http, partner, clock, "active", "day@client.test")
    for _ in range(3):
        assert http.get("/api/1/me", headers=client_key).status_code == 200
    clock.advance(moved)
    path = f"/api/1/clients/{client_id}"
    through_companion = http.get(path, headers=partner.headers)
    monkeypatch.setattr(KeyCompanions, "asked", lambda self, scope: None)
    through_route = http.get(path, headers=partner.headers)
    assert through_companion.json()["usage"]["api_calls_today"] == expected
    assert through_companion.content == through_route.content


def test_a_client_key_reading_its_own_client_sees_its_own_call_counted(http, partner, clock):
    client_id, _, client_key = client_with_user(http, partner, clock, "active", "own@client.test")
    for _ in range(2):
        assert http.get("/api/1/me", headers=client_key).status_code == 200
    response = http.get(f"/api/1/clients/{client_id}", headers=client_key)
    assert response.json()["usage"]["api_calls_today"] == 3


def test_answers_asked_all_at_once_are_those_asked_one_at_a_time(
    app, http, partner, make_partner, clock, database, monkeypatch
):
    """On PostgreSQL the key lookups of requests that arrive together are one statement
    (`db.reads`): each caller still gets the answer of its own key, its own client, its own refusal."""
    trial_id, _, trial_key = client_with_user(http, partner, clock, "trial", "together@client.test")
    disabled_id, _, disabled_key = client_with_user(http, partner, clock, "disabled", "off@client.test")
    stranger = make_partner()
    foreign = new_client(http, stranger, "active")
    asked = [
        (f"/api/1/clients/{trial_id}", partner.headers),
        (f"/api/1/clients/{trial_id}", trial_key),
        (f"/api/1/clients/{disabled_id}", trial_key),  # a sibling: 404
        (f"/api/1/clients/{disabled_id}", disabled_key),  # suspended: 403
        (f"/api/1/clients/{foreign}", partner.headers),  # another partner's: 404
        (f"/api/1/clients/{foreign}", stranger.headers),
        (f"/api/1/clients/{trial_id}", stranger.headers),
        (f"/api/1/clients/{trial_id}", {"Authorization": "Bearer " + "x" * 40}),  # not a key: 401
        ("/api/1/me", trial_key),
        ("/api/1/me", partner.headers),
        ("/api/1/me", stranger.headers),
        ("/api/1/clients", partner.headers),  # the key alone
    ]
    one_at_a_time = [answer(http.get(path, headers=headers)) for path, headers in asked]
    # The lookups themselves, not the process's cache of them (`auth.keycache`, with Redis).
    monkeypatch.setattr(app.state.services, "key_cache", None)
    batches: list[int] = []
    read = _Together._read

    async def noting(self: _Together, query: PreparedSelect, waiting: list[Any]) -> None:
        batches.append(len(waiting))
        await read(self, query, waiting)

    monkeypatch.setattr(_Together, "_read", noting)

    async def all_at_once() -> list[Any]:
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                asking = (client.get(path, headers=headers) for path, headers in asked * 3)
                return await asyncio.gather(*asking)
        finally:  # this loop's connections (the app's lifespan closes those of its own loop)
            await app.state.services.reads.close()
            await app.state.services.meter.aclose()

    at_once = [answer(response) for response in asyncio.run(all_at_once())]
    assert at_once == one_at_a_time * 3
    statuses = [status for status, _, _ in one_at_a_time]
    assert statuses == [200, 200, 404, 403, 404, 200, 404, 401, 200, 200, 200, 200]
    if not database.is_sqlite:  # SQLite reads each key on its own, at once
        assert max(batches) > 1

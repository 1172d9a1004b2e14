"""Fixtures of the custom domains' tests: the app reads its table of verified domains on every
request (no 5-second wait after a domain is verified beside it), and browsers on any host."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.domains.service import verify_domain


@pytest.fixture
def app(settings, clock, database):  # type: ignore[no-untyped-def]
    return create_app(settings.model_copy(update={"domain_cache_seconds": 0}), clock=clock, database=database)


@pytest.fixture
def at(app) -> Iterator[Callable[[str], TestClient]]:  # type: ignore[no-untyped-def]
    """A browser of its own (its own cookies) that sends `Host: <host>`."""
    opened: list[TestClient] = []

    def browser(host: str) -> TestClient:
        client = TestClient(app, base_url=f"http://{host}", raise_server_exceptions=False)
        opened.append(client.__enter__())
        return client

    yield browser
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def own_domain(http, database, clock):  # type: ignore[no-untyped-def]
    """Add `hostname` for the partner through the API and verify it as the operator does."""

    def add(partner, hostname: str, *, verified: bool = True) -> int:  # type: ignore[no-untyped-def]
        response = http.post("/api/1/partner/domains", json={"hostname": hostname}, headers=partner.headers)
        assert response.status_code == 201, response.text
        if verified:
            with database.session(write=True) as db:
                verify_domain(db, clock, hostname)
                db.commit()
        return int(response.json()["id"])

    return add

"""The fixtures that only the web pages' tests use (every other one is in `tests/conftest.py`)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tests.content import create_dashboard, inline_source, share
from tests.factories import client_with_user

PROXY = "10.0.0.2"


@pytest.fixture
def behind_proxy(settings, clock, database):
    """An app behind a reverse proxy at 10.0.0.2 that it trusts; `via(address)` is a browser there
    (the sign-in throttle's tests)."""
    app = create_app(
        settings.model_copy(update={"trusted_proxies": "10.0.0.0/24"}), clock=clock, database=database
    )
    opened: list[TestClient] = []

    def via(address: str) -> TestClient:
        client = TestClient(app, client=(PROXY, 40000), headers={"X-Forwarded-For": address})
        opened.append(client.__enter__())
        return client

    yield via
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def portal_user(http, partner, clock):
    """A client user of an Active client with a live dashboard shared with them (the security
    headers' tests): the client's id, the dashboard's and the user's e-mail address (whose password
    is `tests.factories.PASSWORD`)."""
    client_id, user, _ = client_with_user(http, partner, clock, "active", "reader@client.test")
    source_id = inline_source(http, partner, client_id)
    dashboard_id = create_dashboard(http, partner, client_id, source_id).json()["id"]
    share(http, partner, dashboard_id, user["id"])
    return client_id, dashboard_id, user["email"]

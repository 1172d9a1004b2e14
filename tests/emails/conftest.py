"""The app of the e-mail tests, sending through the test's SMTP server (`smtp_server`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app


@pytest.fixture
def smtp_http(settings, clock, database, smtp_server) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(settings, clock=clock, database=database, mailer=smtp_server.mailer)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client

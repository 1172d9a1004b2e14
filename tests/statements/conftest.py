from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import PartnerHandle


@pytest.fixture
def partner(make_partner, clock) -> PartnerHandle:  # type: ignore[no-untyped-def]
    """A partner created at the start of 2026, before the months these tests bill."""
    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    return make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)


@pytest.fixture
def billed_partner(http, partner, clock):  # type: ignore[no-untyped-def]
    """The partner, with a client Active since 10 February 2026 (2 dashboards, 1 user)."""
    clock.set(datetime(2026, 2, 10, 12, tzinfo=UTC))
    response = http.post(
        "/api/1/clients",
        json={"name": "Acme", "status": "active", "resources": {"dashboards": 2, "users": 1}},
        headers=partner.headers,
    )
    assert response.status_code == 201
    return partner

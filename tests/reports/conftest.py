"""Helpers of the scheduled-report tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.content import dashboard_in


def schedule_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "frequency": "daily",
        "time": "09:00",
        "format": "pdf",
        "recipients": {"emails": ["boss@client.test"]},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def create(http, headers, dashboard_id: int, **changes: Any):
    return http.post(
        f"/api/1/dashboards/{dashboard_id}/schedules", json=schedule_body(**changes), headers=headers
    )


@pytest.fixture
def active_dashboard(http, partner, clock) -> tuple[int, int]:
    """(client_id, dashboard_id) of an Active client's dashboard."""
    client_id, _, dashboard_id = dashboard_in(http, partner, "active", clock)
    return client_id, dashboard_id

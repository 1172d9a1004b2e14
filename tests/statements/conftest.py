from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import PartnerHandle


@pytest.fixture
def partner(make_partner, clock) -> PartnerHandle:  # type: ignore[no-untyped-def]
    """A partner created at the start of 2026, before the months these tests bill."""
    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    return make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)

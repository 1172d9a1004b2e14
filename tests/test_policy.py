"""SPEC §4, the policy matrix, transcribed row by row. ✓ allowed, ✓wm with watermark, ✗ refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantry.errors import StatusForbids
from tenantry.lifecycle import effective_status_at
from tenantry.policy import (
    POLICY,
    Capability,
    Decision,
    EffectiveStatus,
    Status,
    counts_against_pool,
    require,
    stored_status,
)

_NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
S = EffectiveStatus
COLUMNS = (S.SETUP, S.TRIAL, S.TRIAL_EXPIRED, S.ACTIVE, S.DISABLED)
SYMBOL = {"✓": Decision.ALLOWED, "✓wm": Decision.WATERMARK, "✗": Decision.REFUSED}

# | capability                                  | setup | trial | trial_expired | active | disabled |
SPEC_4 = """
| partner users manage the client, sign in as it | ✓   | ✓ | ✓ | ✓ | ✓ |
| build dashboards, klips, data sources          | ✓   | ✓ | ✓ | ✓ | ✓ |
| add or remove client users                     | ✗   | ✓ | ✗ | ✓ | ✗ |
| client users sign in                           | ✗   | ✓ | ✗ | ✓ | ✗ |
| share live dashboards with client users        | ✗   | ✓ | ✗ | ✓ | ✗ |
| create published links                         | ✗   | ✓ | ✗ | ✓ | ✗ |
| view published links                           | ✗   | ✓ | ✗ | ✓ | ✗ |
| set a data source's refresh rate               | ✓   | ✓ | ✓ | ✓ | ✓ |
| queue a data source for refresh by hand        | ✓   | ✓ | ✗ | ✓ | ✗ |
| data sources refresh automatically             | ✗   | ✓ | ✗ | ✓ | ✗ |
| a new url data source is loaded on creation    | ✓   | ✓ | ✗ | ✓ | ✗ |
| download or email dashboards                   | ✓wm | ✓ | ✗ | ✓ | ✗ |
| client API keys work                           | ✗   | ✓ | ✗ | ✓ | ✗ |
| allocation counts against the partner's pool   | ✗   | ✓ | ✓ | ✓ | ✗ |
| billable in statements                         | ✗   | ✗ | ✗ | ✓ | ✗ |
"""

# SPEC §12 "Setup watermark": the live view a partner sees signed in as a Setup client carries it.
SPEC_12 = """
| dashboards viewed live in the portal           | ✓wm | ✓ | ✓ | ✓ | ✓ |
"""

CAPABILITY_OF_ROW = {
    "partner users manage the client, sign in as it": Capability.MANAGE_CLIENT,
    "build dashboards, klips, data sources": Capability.BUILD_CONTENT,
    "add or remove client users": Capability.MANAGE_USERS,
    "client users sign in": Capability.USER_SIGN_IN,
    "share live dashboards with client users": Capability.SHARE_DASHBOARDS,
    "create published links": Capability.CREATE_PUBLISHED_LINKS,
    "view published links": Capability.VIEW_PUBLISHED_LINKS,
    "set a data source's refresh rate": Capability.SET_REFRESH_RATE,
    "queue a data source for refresh by hand": Capability.QUEUE_REFRESH,
    "data sources refresh automatically": Capability.AUTO_REFRESH,
    "a new url data source is loaded on creation": Capability.INITIAL_LOAD,
    "download or email dashboards": Capability.DOWNLOAD,
    "client API keys work": Capability.CLIENT_API,
    "allocation counts against the partner's pool": Capability.COUNTS_AGAINST_POOL,
    "billable in statements": Capability.BILLABLE,
    "dashboards viewed live in the portal": Capability.VIEW_LIVE,
}


def _rows() -> list[tuple[str, EffectiveStatus, Decision]]:
    rows = []
    for line in [*SPEC_4.strip().splitlines(), *SPEC_12.strip().splitlines()]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        label, marks = cells[0], cells[1:]
        for status, mark in zip(COLUMNS, marks, strict=True):
            rows.append((label, status, SYMBOL[mark]))
    return rows


@pytest.mark.parametrize(("capability", "status", "expected"), _rows())
def test_the_policy_table_matches_spec_sections_4_and_12(
    capability: str, status: EffectiveStatus, expected: Decision
):
    assert POLICY[(CAPABILITY_OF_ROW[capability], status)] is expected


def test_every_capability_of_the_code_has_a_row_in_the_spec_table():
    assert set(CAPABILITY_OF_ROW.values()) == set(Capability)
    assert len(POLICY) == len(Capability) * len(EffectiveStatus)


def test_a_refusal_names_the_status_and_the_action_in_words():
    with pytest.raises(StatusForbids) as refused:
        require(Capability.MANAGE_USERS, S.SETUP, action="Users cannot be added")
    assert refused.value.detail == "Users cannot be added while the client is in Setup mode."
    assert refused.value.extensions == {"client_status": "setup", "action": "manage_users"}


def test_a_download_in_setup_is_allowed_with_a_watermark_and_in_no_other_status():
    watermarked = [s for s in COLUMNS if POLICY[(Capability.DOWNLOAD, s)] is Decision.WATERMARK]
    assert watermarked == [S.SETUP]


@pytest.mark.parametrize(
    ("status", "counts"),
    [(Status.SETUP, False), (Status.TRIAL, True), (Status.ACTIVE, True), (Status.DISABLED, False)],
)
def test_only_trial_and_active_allocations_count_against_the_pool(status: Status, counts: bool):
    assert counts_against_pool(status) is counts


@pytest.mark.parametrize("status", list(Status))
def test_a_stored_value_reads_as_its_status_and_stands_for_the_same_effective_status(status: Status):
    assert stored_status(status.value) is status
    assert effective_status_at(status, None, _NOON) is EffectiveStatus(status.value)


def test_a_stored_value_that_names_no_status_is_refused_as_the_enum_refuses_it():
    with pytest.raises(ValueError, match="'paused' is not a valid Status"):
        stored_status("paused")


def test_a_trial_past_its_end_reads_as_expired_to_the_second():
    assert effective_status_at(Status.TRIAL, _NOON, _NOON) is EffectiveStatus.TRIAL_EXPIRED
    assert effective_status_at(Status.TRIAL, _NOON + timedelta(seconds=1), _NOON) is EffectiveStatus.TRIAL

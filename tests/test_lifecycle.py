"""SPEC §3 (transitions, activation) and §5 (the trial clock), table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tenantry import lifecycle
from tenantry.errors import ActivationRequirementsUnmet, InvalidTransition, TrialExtensionUnavailable
from tenantry.lifecycle import Trial, effective_status, extend_trial, start_trial
from tenantry.policy import EffectiveStatus, Status

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

# | from \ to  | setup | trial | active | disabled |
SPEC_3 = """
| (create)   | ✓ | ✓ | ✓ | ✓ |
| setup      | — | ✓ | ✓ | ✓ |
| trial      | ✗ | — | ✓ | ✓ |
| active     | ✗ | ✗ | — | ✓ |
| disabled   | ✗ | ✗ | ✓ | — |
"""
TARGETS = (Status.SETUP, Status.TRIAL, Status.ACTIVE, Status.DISABLED)


def _rows() -> list[tuple[Status | None, Status, str]]:
    rows = []
    for line in SPEC_3.strip().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        source = None if cells[0] == "(create)" else Status(cells[0])
        for target, mark in zip(TARGETS, cells[1:], strict=True):
            rows.append((source, target, mark))
    return rows


@pytest.mark.parametrize(("source", "target", "mark"), _rows())
def test_the_transition_table_matches_spec_section_3(source: Status | None, target: Status, mark: str):
    if mark == "✗":
        with pytest.raises(InvalidTransition):
            lifecycle.check_transition(source, target)
    else:  # ✓, or — (setting the status a client already has is a no-op)
        lifecycle.check_transition(source, target)
        assert (mark == "—") == lifecycle.is_noop(source, target)


def test_once_changed_from_setup_a_client_never_returns_to_setup():
    for source in (Status.TRIAL, Status.ACTIVE, Status.DISABLED):
        with pytest.raises(InvalidTransition) as refused:
            lifecycle.check_transition(source, Status.SETUP)
        assert "cannot be moved to Setup" in refused.value.detail


def test_a_client_created_disabled_may_only_become_active():
    lifecycle.check_transition(None, Status.DISABLED)
    assert lifecycle.allowed_next(Status.DISABLED) == [Status.ACTIVE]


@pytest.mark.parametrize(
    ("allocation", "missing"),
    [
        ({"dashboards": 0, "users": 0}, ["dashboards", "users"]),
        ({"dashboards": 1, "users": 0}, ["users"]),
        ({"dashboards": 0, "users": 1}, ["dashboards"]),
        ({"dashboards": 1, "users": 1}, []),
    ],
)
def test_activation_needs_at_least_one_dashboard_and_one_user(allocation: dict[str, int], missing: list[str]):
    assert lifecycle.activation_missing(allocation) == missing
    if missing:
        with pytest.raises(ActivationRequirementsUnmet) as refused:
            lifecycle.check_activation(allocation)
        assert refused.value.extensions["missing"] == missing
    else:
        lifecycle.check_activation(allocation)


def test_entering_trial_starts_a_clock_of_the_plans_trial_days():
    trial = start_trial(NOW, 14)
    assert trial.started_at == NOW
    assert trial.ends_at == NOW + 14 * DAY
    assert not trial.extended


@pytest.mark.parametrize(
    ("elapsed", "days_remaining"),
    [
        (timedelta(0), 14),
        (timedelta(seconds=1), 14),  # 13.99 days left rounds up
        (DAY, 13),
        (13 * DAY, 1),
        (14 * DAY - timedelta(seconds=1), 1),
        (14 * DAY, 0),
        (20 * DAY, 0),
    ],
)
def test_days_remaining_is_the_ceiling_of_the_days_left_and_zero_once_expired(
    elapsed: timedelta, days_remaining: int
):
    assert start_trial(NOW, 14).days_remaining(NOW + elapsed) == days_remaining


def test_a_trial_expires_exactly_at_its_end_to_the_second():
    trial = start_trial(NOW, 14)
    end = NOW + 14 * DAY
    assert effective_status(Status.TRIAL, trial, end - timedelta(seconds=1)) is EffectiveStatus.TRIAL
    assert effective_status(Status.TRIAL, trial, end) is EffectiveStatus.TRIAL_EXPIRED


def test_an_expired_trial_is_only_a_trial_status_thing():
    old_trial = start_trial(NOW - 100 * DAY, 14)
    assert effective_status(Status.ACTIVE, old_trial, NOW) is EffectiveStatus.ACTIVE
    assert effective_status(Status.DISABLED, old_trial, NOW) is EffectiveStatus.DISABLED


class TestExtension:
    def test_one_extension_before_the_first_trial_ends_adds_the_extension_days(self):
        trial = start_trial(NOW, 14)
        extended = extend_trial(trial, NOW + 13 * DAY, 14, Status.TRIAL)
        assert extended.ends_at == NOW + 28 * DAY
        assert extended.extended

    def test_an_extension_a_second_before_the_end_is_granted(self):
        trial = start_trial(NOW, 14)
        assert extend_trial(trial, trial.ends_at - timedelta(seconds=1), 14, Status.TRIAL).extended

    def test_an_extension_at_or_after_the_end_is_refused(self):
        trial = start_trial(NOW, 14)
        for moment in (trial.ends_at, trial.ends_at + DAY):
            with pytest.raises(TrialExtensionUnavailable, match="before the first trial period ends"):
                extend_trial(trial, moment, 14, Status.TRIAL)

    def test_a_second_extension_is_refused(self):
        trial = extend_trial(start_trial(NOW, 14), NOW + DAY, 14, Status.TRIAL)
        with pytest.raises(TrialExtensionUnavailable, match="already been extended"):
            extend_trial(trial, NOW + 2 * DAY, 14, Status.TRIAL)

    def test_a_client_not_in_trial_cannot_extend(self):
        trial = start_trial(NOW, 14)
        with pytest.raises(TrialExtensionUnavailable):
            extend_trial(trial, NOW + DAY, 14, Status.ACTIVE)
        with pytest.raises(TrialExtensionUnavailable):
            extend_trial(None, NOW, 14, Status.SETUP)

    def test_extension_availability_follows_the_same_rule(self):
        trial = start_trial(NOW, 14)
        assert trial.extension_available(NOW + 13 * DAY)
        assert not trial.extension_available(NOW + 14 * DAY)
        assert not Trial(NOW, NOW + 28 * DAY, NOW + DAY).extension_available(NOW + 2 * DAY)

"""Client lifecycle rules of SPEC §3 and §5: transitions, the activation requirement, the trial clock.

Pure: every function takes the instant it reasons about; nothing here reads a clock or a database.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from tenantry.errors import ActivationRequirementsUnmet, InvalidTransition, TrialExtensionUnavailable
from tenantry.policy import EFFECTIVE_OF, EffectiveStatus, Status, stored_status

# (from, to) pairs that are allowed; `None` is "the client is being created".
# Seed: "Once an account's status is changed from Setup Mode, it cannot return to this mode."
# Seed: Disabled "can switch back to Active Mode at any time" (and only to Active).
# Seed: "When creating or editing a client account, you can choose one of the four" (SPEC §15);
# one created Disabled holds nothing of the pool and, like any Disabled client, may only become Active.
TRANSITIONS: dict[Status | None, frozenset[Status]] = {
    None: frozenset({Status.SETUP, Status.TRIAL, Status.ACTIVE, Status.DISABLED}),
    Status.SETUP: frozenset({Status.TRIAL, Status.ACTIVE, Status.DISABLED}),
    Status.TRIAL: frozenset({Status.ACTIVE, Status.DISABLED}),
    Status.ACTIVE: frozenset({Status.DISABLED}),
    Status.DISABLED: frozenset({Status.ACTIVE}),
}

_NAMES = {
    Status.SETUP: "Setup",
    Status.TRIAL: "Trial",
    Status.ACTIVE: "Active",
    Status.DISABLED: "Disabled",
}

DAY = timedelta(days=1)
# `client.trial_will_end` is due this long before a trial ends (events.repository finds them).
TRIAL_WILL_END_NOTICE = timedelta(days=3)


def is_noop(current: Status | None, target: Status) -> bool:
    """Setting the status a client already has is a no-op, not an error."""
    return current is target


def check_transition(current: Status | None, target: Status) -> None:
    if is_noop(current, target):
        return
    if target not in TRANSITIONS[current]:
        if current is None:
            detail = f"A client cannot be created in {_NAMES[target]} mode."
        else:
            detail = f"A client in {_NAMES[current]} mode cannot be moved to {_NAMES[target]} mode."
        extensions: dict[str, Any] = {"from": current.value if current else None, "to": target.value}
        raise InvalidTransition(detail, **extensions, allowed=sorted(s.value for s in TRANSITIONS[current]))


def allowed_next(current: Status) -> list[Status]:
    return [s for s in Status if s in TRANSITIONS[current]]


def activation_missing(allocation: Mapping[str, int]) -> list[str]:
    """What stands between a client and Active (seed: at least one dashboard and one user)."""
    missing = []
    if allocation.get("dashboards", 0) < 1:
        missing.append("dashboards")
    if allocation.get("users", 0) < 1:
        missing.append("users")
    return missing


def check_activation(allocation: Mapping[str, int]) -> None:
    missing = activation_missing(allocation)
    if missing:
        words = " and ".join(f"at least one {m[:-1]}" for m in missing)
        raise ActivationRequirementsUnmet(
            f"The client needs {words} allocated before it can become Active.", missing=missing
        )


@dataclass(frozen=True)
class Trial:
    """The trial fields of a client. They stay as history after the client leaves Trial."""

    started_at: datetime
    ends_at: datetime
    extended_at: datetime | None = None

    @property
    def extended(self) -> bool:
        return self.extended_at is not None

    def expired(self, now: datetime) -> bool:
        return now >= self.ends_at

    def days_remaining(self, now: datetime) -> int:
        """ceil((ends_at - now) / 1 day), 0 once expired."""
        left = (self.ends_at - now) / DAY
        return max(0, math.ceil(left))

    def extension_available(self, now: datetime) -> bool:
        # Seed: the extension must be requested before the end of the *first* trial period;
        # once extended, the first period is over as far as extensions go.
        return not self.extended and now < self.ends_at


class ClientState(Protocol):
    """The fields of a client its status is read from: an ORM `Client` or a row read for it."""

    @property
    def status(self) -> str: ...
    @property
    def trial_started_at(self) -> datetime | None: ...
    @property
    def trial_ends_at(self) -> datetime | None: ...
    @property
    def trial_extended_at(self) -> datetime | None: ...


def trial_of(client: ClientState) -> Trial | None:
    """The client's trial, or None if it never had one."""
    if client.trial_started_at is None or client.trial_ends_at is None:
        return None
    return Trial(client.trial_started_at, client.trial_ends_at, client.trial_extended_at)


def trial_reading(client: ClientState, now: datetime) -> tuple[bool, int] | None:
    """All that a view of the client's status and trial (`effective_status`, and each `Trial`
    method) shows of `now`: whether the trial has ended, and its days remaining; None without a
    trial, whose views show nothing of the clock."""
    trial = trial_of(client)
    return None if trial is None else (trial.expired(now), trial.days_remaining(now))


def client_status(client: ClientState, now: datetime) -> EffectiveStatus:
    """The effective status of a client at `now` (its trial's end taken into account)."""
    return effective_status(stored_status(client.status), trial_of(client), now)


def start_trial(now: datetime, trial_days: int) -> Trial:
    return Trial(started_at=now, ends_at=now + timedelta(days=trial_days))


def extend_trial(trial: Trial | None, now: datetime, extension_days: int, status: Status) -> Trial:
    if status is not Status.TRIAL or trial is None:
        raise TrialExtensionUnavailable("Only a client in Trial mode can have its trial extended.")
    if trial.extended:
        raise TrialExtensionUnavailable("The trial has already been extended once.")
    if not now < trial.ends_at:
        raise TrialExtensionUnavailable(
            "The trial has ended; an extension must be requested before the first trial period ends."
        )
    return replace(trial, ends_at=trial.ends_at + timedelta(days=extension_days), extended_at=now)


def effective_status(status: Status, trial: Trial | None, now: datetime) -> EffectiveStatus:
    """The stored status, or `trial_expired` once a trial's end has passed (exact to the second)."""
    return effective_status_at(status, trial.ends_at if trial is not None else None, now)


def effective_status_at(status: Status, trial_ends_at: datetime | None, now: datetime) -> EffectiveStatus:
    if status is Status.TRIAL and trial_ends_at is not None and now >= trial_ends_at:
        return EffectiveStatus.TRIAL_EXPIRED
    return EFFECTIVE_OF[status]

"""THE policy matrix of SPEC §4: what each client status allows.

Every enforcement point in the product asks `decide()` (or `require()`); nothing else in the code
knows which status allows what. The table below is meant to be read side by side with the SPEC.
"""

from __future__ import annotations

from enum import StrEnum

from tenantry.errors import StatusForbids


class Status(StrEnum):
    """The stored status of a client account."""

    SETUP = "setup"
    TRIAL = "trial"
    ACTIVE = "active"
    DISABLED = "disabled"


class EffectiveStatus(StrEnum):
    """The stored status, plus `trial_expired`, derived from the clock and never stored."""

    SETUP = "setup"
    TRIAL = "trial"
    TRIAL_EXPIRED = "trial_expired"
    ACTIVE = "active"
    DISABLED = "disabled"


# Each stored status by its value, and the effective status it stands for while no trial has
# ended: lookups in a dict, where calling the enum costs half a microsecond (every request that
# reads a client's status makes them).
_STATUS_OF_VALUE: dict[str, Status] = {status.value: status for status in Status}
EFFECTIVE_OF: dict[str, EffectiveStatus] = {status.value: EffectiveStatus(status.value) for status in Status}


def stored_status(value: str) -> Status:
    """`Status(value)` (ValueError for a value that names none), looked up in a dict."""
    found = _STATUS_OF_VALUE.get(value)
    return found if found is not None else Status(value)


class Capability(StrEnum):
    MANAGE_CLIENT = "manage_client"
    BUILD_CONTENT = "build_content"
    MANAGE_USERS = "manage_users"
    USER_SIGN_IN = "user_sign_in"
    SHARE_DASHBOARDS = "share_dashboards"
    CREATE_PUBLISHED_LINKS = "create_published_links"
    VIEW_PUBLISHED_LINKS = "view_published_links"
    SET_REFRESH_RATE = "set_refresh_rate"
    QUEUE_REFRESH = "queue_refresh"
    AUTO_REFRESH = "auto_refresh"
    INITIAL_LOAD = "initial_load"
    DOWNLOAD = "download"
    CLIENT_API = "client_api"
    COUNTS_AGAINST_POOL = "counts_against_pool"
    BILLABLE = "billable"
    VIEW_LIVE = "view_live"


class Decision(StrEnum):
    ALLOWED = "allowed"
    WATERMARK = "watermark"  # allowed, with the SETUP MODE watermark
    REFUSED = "refused"

    @property
    def allowed(self) -> bool:
        return self is not Decision.REFUSED


Y, WM, N = Decision.ALLOWED, Decision.WATERMARK, Decision.REFUSED

_COLUMNS = (
    EffectiveStatus.SETUP,
    EffectiveStatus.TRIAL,
    EffectiveStatus.TRIAL_EXPIRED,
    EffectiveStatus.ACTIVE,
    EffectiveStatus.DISABLED,
)

# capability                              setup trial expired active disabled
_ROWS: dict[Capability, tuple[Decision, Decision, Decision, Decision, Decision]] = {
    Capability.MANAGE_CLIENT:            (Y,  Y,  Y,  Y,  Y),  # seed: disabled still accessible
    Capability.BUILD_CONTENT:            (Y,  Y,  Y,  Y,  Y),
    Capability.MANAGE_USERS:             (N,  Y,  N,  Y,  N),  # seed
    Capability.USER_SIGN_IN:             (N,  Y,  N,  Y,  N),  # seed: disabled -> "suspended"
    Capability.SHARE_DASHBOARDS:         (N,  Y,  N,  Y,  N),  # seed
    Capability.CREATE_PUBLISHED_LINKS:   (N,  Y,  N,  Y,  N),  # seed
    Capability.VIEW_PUBLISHED_LINKS:     (N,  Y,  N,  Y,  N),  # seed
    Capability.SET_REFRESH_RATE:         (Y,  Y,  Y,  Y,  Y),  # seed
    Capability.QUEUE_REFRESH:            (Y,  Y,  N,  Y,  N),  # seed
    Capability.AUTO_REFRESH:             (N,  Y,  N,  Y,  N),  # seed
    Capability.INITIAL_LOAD:             (Y,  Y,  N,  Y,  N),
    Capability.DOWNLOAD:                 (WM, Y,  N,  Y,  N),  # seed
    Capability.CLIENT_API:               (N,  Y,  N,  Y,  N),  # seed
    Capability.COUNTS_AGAINST_POOL:      (N,  Y,  Y,  Y,  N),  # seed
    Capability.BILLABLE:                 (N,  N,  N,  Y,  N),  # seed: trial is free
    Capability.VIEW_LIVE:                (WM, Y,  Y,  Y,  Y),  # SPEC §12: Setup's live view watermarked
}  # fmt: skip

POLICY: dict[tuple[Capability, EffectiveStatus], Decision] = {
    (capability, status): decision
    for capability, row in _ROWS.items()
    for status, decision in zip(_COLUMNS, row, strict=True)
}

_STATUS_WORDS = {
    EffectiveStatus.SETUP: "in Setup mode",
    EffectiveStatus.TRIAL: "in Trial mode",
    EffectiveStatus.TRIAL_EXPIRED: "in an expired trial",
    EffectiveStatus.ACTIVE: "in Active mode",
    EffectiveStatus.DISABLED: "disabled",
}

# How a refusal names the action: "<action> while the client is <status words>."
_ACTION_WORDS = {
    Capability.MANAGE_CLIENT: "The client cannot be managed",
    Capability.BUILD_CONTENT: "Content cannot be built",
    Capability.MANAGE_USERS: "Users cannot be added or removed",
    Capability.USER_SIGN_IN: "Users cannot sign in",
    Capability.SHARE_DASHBOARDS: "Dashboards cannot be shared with users",
    Capability.CREATE_PUBLISHED_LINKS: "Published links cannot be created",
    Capability.VIEW_PUBLISHED_LINKS: "Published links cannot be viewed",
    Capability.SET_REFRESH_RATE: "Refresh rates cannot be set",
    Capability.QUEUE_REFRESH: "Data sources cannot be queued for refresh",
    Capability.AUTO_REFRESH: "Data sources do not refresh automatically",
    Capability.INITIAL_LOAD: "Data sources cannot be loaded",
    Capability.DOWNLOAD: "Dashboards cannot be downloaded or e-mailed",
    Capability.CLIENT_API: "The API cannot be used",
    Capability.COUNTS_AGAINST_POOL: "Resources do not count against the plan",
    Capability.BILLABLE: "The client is not billed",
    Capability.VIEW_LIVE: "Dashboards cannot be viewed",
}


def decide(capability: Capability, status: EffectiveStatus) -> Decision:
    return POLICY[(capability, status)]


def allows(capability: Capability, status: EffectiveStatus) -> bool:
    return decide(capability, status).allowed


def refusal_message(capability: Capability, status: EffectiveStatus, action: str | None = None) -> str:
    words = action or _ACTION_WORDS[capability]
    return f"{words} while the client is {_STATUS_WORDS[status]}."


def require(capability: Capability, status: EffectiveStatus, action: str | None = None) -> Decision:
    """Return the decision, or raise `status_forbids` naming the status and the action."""
    decision = decide(capability, status)
    if not decision.allowed:
        raise StatusForbids(
            refusal_message(capability, status, action),
            client_status=status.value,
            action=capability.value,
        )
    return decision


def counts_against_pool(status: Status) -> bool:
    """Whether a stored status holds its allocation in the pool.

    An expired trial is still stored as `trial` and keeps its allocation (SPEC §6), so the
    stored status is enough: the pool never changes merely because time passed.
    """
    return allows(Capability.COUNTS_AGAINST_POOL, EFFECTIVE_OF[status])

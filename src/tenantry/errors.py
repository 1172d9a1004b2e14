"""One error hierarchy. Services raise these; the web layer renders them once (problem+json).

Each error carries a stable machine `code`, the HTTP status it maps to, a short `title` and a
`detail` sentence a person can read. Extra fields (`extensions`) are added to the problem body;
`headers` (such as `Retry-After`) go on the answer.
"""

from __future__ import annotations

from typing import Any


def problem_document(status: int, code: str, title: str, detail: str, **extensions: Any) -> dict[str, Any]:
    """The RFC 9457 body of a problem: every problem answer is built here."""
    return {
        "type": f"https://tenantry.dev/problems/{code.replace('_', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extensions,
    }


class TenantryError(Exception):
    code = "error"
    status = 400
    title = "Request failed"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def to_problem(self) -> dict[str, Any]:
        return problem_document(self.status, self.code, self.title, self.detail, **self.extensions)


class InvalidTransition(TenantryError):
    code, status, title = "invalid_transition", 409, "Status change not allowed"


class ActivationRequirementsUnmet(TenantryError):
    code, status, title = "activation_requirements_unmet", 409, "Client cannot be activated yet"


class StatusForbids(TenantryError):
    code, status, title = "status_forbids", 409, "Not allowed in this status"


class PoolExhausted(TenantryError):
    code, status, title = "pool_exhausted", 409, "Not enough left in the plan"


class AllocationExceeded(TenantryError):
    code, status, title = "allocation_exceeded", 409, "Client allocation used up"


class AllocationBelowUsage(TenantryError):
    code, status, title = "allocation_below_usage", 409, "Allocation below what the client uses"


class TrialExtensionUnavailable(TenantryError):
    code, status, title = "trial_extension_unavailable", 409, "Trial cannot be extended"


class Duplicate(TenantryError):
    code, status, title = "duplicate", 409, "Already exists"


class NotFound(TenantryError):
    code, status, title = "not_found", 404, "Not found"


class LinkUnavailable(TenantryError):
    """A published link's public page shows nothing but "not available": 404 for an unknown or
    revoked token, 403 while the client's status forbids viewing. The public pages answer it
    with their own page (not problem+json), so the detail says no more than that."""

    code, title = "link_unavailable", "Link not available"

    def __init__(self, status: int) -> None:
        super().__init__("This link is not available.")
        self.status = status


class Unauthenticated(TenantryError):
    code, status, title = "unauthenticated", 401, "Authentication required"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        # A 401 names the scheme the API takes (RFC 9110 §15.5.2).
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})}, **extensions)


class Forbidden(TenantryError):
    code, status, title = "forbidden", 403, "Not allowed for your role"


class AccountSuspended(TenantryError):
    code, status, title = "account_suspended", 403, "Account suspended"


class TrialEnded(TenantryError):
    code, status, title = "trial_ended", 403, "Trial ended"


class DailyApiLimitReached(TenantryError):
    code, status, title = "daily_api_limit_reached", 429, "Daily API call limit reached"


class RateLimited(TenantryError):
    code, status, title = "rate_limited", 429, "Too many requests"


class InvalidInput(TenantryError):
    """Input that is well-formed but not acceptable (used where a schema cannot say it)."""

    code, status, title = "validation_error", 422, "Invalid request"


class WeakPassword(TenantryError):
    """A chosen password that breaks the password rules (SPEC §12); the detail names the reason."""

    code, status, title = "weak_password", 422, "Password too weak"


class MeterUnavailable(TenantryError):
    """The API-call meter cannot count (Redis unreachable): calls are refused, never left uncounted."""

    code, status, title = "meter_unavailable", 503, "API-call meter unavailable"


class DatabaseUnavailable(TenantryError):
    """The database is down, restarting, locked or full: the request changed nothing; retry soon."""

    code, status, title = "database_unavailable", 503, "Database unavailable"


class Overloaded(TenantryError):
    """More requests than this process serves at once waited too long for their turn."""

    code, status, title = "overloaded", 503, "Server busy"


class PayloadTooLarge(TenantryError):
    code, status, title = "payload_too_large", 413, "Request body too large"


class LimitReached(TenantryError):
    """A per-owner cap (data sources, dashboards, klips, webhooks): not the plan's pool, a bound
    on how much one account may pile up."""

    code, status, title = "limit_reached", 409, "Limit reached"


class EmailLimitReached(TenantryError):
    """A user has e-mailed dashboards to as many recipients as a day allows (SPEC §12)."""

    code, status, title = "email_limit_reached", 429, "Daily e-mail limit reached"


class IdempotencyTakenOver(TenantryError):
    """A request ran past the request time-out, and a retry with its `Idempotency-Key` took its
    place: nothing of it is kept."""

    code, status, title = "idempotency_conflict", 409, "Request taken over"


class LastAdmin(TenantryError):
    """The change would leave an account (a partner, or a client) without any admin."""

    code, status, title = "last_admin", 409, "The last admin stays"


class InvitationAccepted(TenantryError):
    """The user has set a password already: there is no invitation to send again."""

    code, status, title = "invitation_accepted", 409, "Invitation already accepted"


class MfaState(TenantryError):
    """The second factor is not in the state the request needs (already on, not begun, required)."""

    code, status, title = "mfa_state", 409, "Second factor"

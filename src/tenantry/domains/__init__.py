"""Partners' own domains (SPEC §16): which partner a request's `Host` belongs to, and the address
e-mails link to.

`host_partner_id` reads what the host middleware (`tenantry.domains.routing`) resolved for this
request: the partner whose verified domain the `Host` header names, or None on the default
address (and for any host that matches no domain, which is served as the default brand, never as
another partner's).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tenantry.domains.repository import first_verified_hostname
from tenantry.settings import Settings


def host_partner_id(scope_or_request: Any) -> int | None:
    """The partner whose verified domain this request came to, or None (the default address)."""
    scope = getattr(scope_or_request, "scope", scope_or_request)
    state = scope.get("state") or {}
    value = state.get("host_partner_id")
    return value if isinstance(value, int) else None


def partner_base_url(db: Session, settings: Settings, partner_id: int | None) -> str:
    """Where e-mails for this partner link to: its first verified domain over https, else the
    operator's `TENANTRY_BASE_URL`."""
    return base_url_of(db, partner_id, settings.base_url)


def base_url_of(db: Session, partner_id: int | None, default: str) -> str:
    """The partner's first verified domain (by id) over https, else `default` (without a final /)."""
    hostname = first_verified_hostname(db, partner_id) if partner_id is not None else None
    return f"https://{hostname}" if hostname else default.rstrip("/")

"""Who is calling: a partner user or a client user, resolved from an API key or a session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tenantry.errors import Forbidden

PartnerRole = Literal["admin", "editor", "viewer"]


@dataclass(frozen=True)
class Principal:
    kind: Literal["partner_user", "client_user"]
    partner_id: int
    user_id: int
    role: str
    client_id: int | None = None
    api_key_id: int | None = None

    @property
    def is_partner(self) -> bool:
        return self.kind == "partner_user"

    @property
    def actor(self) -> str:
        """How this caller is named in history and audit records."""
        return f"{self.kind}:{self.user_id}"

    def require_write(self) -> None:
        """Viewers read; admins and editors change things."""
        if self.is_partner and self.role == "viewer":
            raise Forbidden("A viewer can read but not change anything.")

    def require_admin(self) -> None:
        if self.role != "admin":
            raise Forbidden("Only an admin can do this.")


SYSTEM_ACTOR = "system"
CLI_ACTOR = "cli"

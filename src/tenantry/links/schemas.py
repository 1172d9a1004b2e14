"""Request and response bodies of the published-links API. Unknown fields are refused (422)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, StringConstraints

from tenantry.clients.schemas import Strict
from tenantry.fields import Name

Password = Annotated[str, StringConstraints(min_length=8, max_length=200)]


class LinkCreate(Strict):
    name: Name
    password: Password | None = None


class LinkOut(BaseModel):
    id: int
    dashboard_id: int
    name: str
    # The whole URL carries the token, which is kept only as a hash: it is shown once, here.
    url: str | None
    token_prefix: str
    protected: bool
    created_at: datetime
    last_accessed_at: datetime | None
    revoked_at: datetime | None


class LinkList(BaseModel):
    items: list[LinkOut]
    total: int
    limit: int
    offset: int

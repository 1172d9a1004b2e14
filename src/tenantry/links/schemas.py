"""Request and response bodies of the published-links API. Unknown fields are refused (422)."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from tenantry.fields import Name, Password, Strict

if TYPE_CHECKING:
    from tenantry.db.dashboard_models import PublishedLink

MAX_ALLOWED_ORIGINS = 20
_ORIGIN = re.compile(r"(?P<scheme>https?)://(?P<host>\[[0-9a-f:.]+\]|[^/:\[\]]+)(?::(?P<port>[0-9]{1,5}))?/?")
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def origin(value: str) -> str:
    """A site that may frame a published page, as `scheme://host[:port]` in lower case.

    It becomes a source of the page's CSP `frame-ancestors`, so only what is surely an origin
    passes: http or https, a host name (a first label `*` for every subdomain), an IP address or
    a bracketed IPv6 one, an optional port; no path, query, user or space to smuggle a directive.
    """
    found = _ORIGIN.fullmatch(value.strip().lower())
    if found is None or len(value) > 300:
        raise ValueError(f"{value[:300]!r} is not an origin such as https://example.com")
    scheme, host, port = found["scheme"], found["host"], found["port"]
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{value!r} has no valid IPv6 address") from None
    else:
        labels = host.split(".")
        if labels[0] == "*" and len(labels) > 2:
            labels = labels[1:]
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            hint = "" if host.isascii() else " (write a non-ASCII name in its xn-- form)"
            raise ValueError(f"{value!r} has no valid host name{hint}")
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} has no valid port")
    if port is None or port.lstrip("0") == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{int(port)}"


def _distinct(origins: list[str]) -> list[str]:
    return list(dict.fromkeys(origins))


Origin = Annotated[str, StringConstraints(max_length=300), AfterValidator(origin)]
AllowedOrigins = Annotated[list[Origin], Field(max_length=MAX_ALLOWED_ORIGINS), AfterValidator(_distinct)]


class LinkCreate(Strict):
    name: Name
    password: Password | None = None
    # None: any site may embed the page; a list: only these (an empty one: no site).
    allowed_origins: AllowedOrigins | None = None


class LinkOut(BaseModel):
    id: int
    dashboard_id: int
    name: str
    # The whole URL carries the token, which is kept only as a hash: it is shown once, here.
    url: str | None
    token_prefix: str
    protected: bool
    allowed_origins: list[str] | None
    created_at: datetime
    last_accessed_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, link: PublishedLink, base_url: str, token: str | None = None) -> LinkOut:
        """A link; its URL only when the token is given (at creation: it is kept only as a hash)."""
        return cls(
            id=link.id,
            dashboard_id=link.dashboard_id,
            name=link.name,
            url=f"{base_url.rstrip('/')}/published/{token}" if token else None,
            token_prefix=link.token_prefix,
            protected=link.password_hash is not None,
            allowed_origins=link.allowed_origins,
            created_at=link.created_at,
            last_accessed_at=link.last_accessed_at,
            revoked_at=link.revoked_at,
        )


class LinkList(BaseModel):
    items: list[LinkOut]
    total: int
    limit: int
    offset: int

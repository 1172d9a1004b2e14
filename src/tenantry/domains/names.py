"""What a partner's host name may be: one DNS name, written one way. Pure: no framework, no SQL.

A name is kept lower-case, without the trailing dot, and an internationalised name in its ASCII
(punycode) form, which is what browsers send in `Host`; so two spellings of one name are one row.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import idna

MAX_LENGTH = 253
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class BadHostname(ValueError):
    """Not a host name a partner may use; the message says why, in a few words."""


def normalised(value: str) -> str:
    """The one spelling of a host name (lower-case, no trailing dot, punycode), or BadHostname."""
    name = value.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise BadHostname("a host name is required")
    if any(ch in name for ch in ":/@[]?#\\ "):
        raise BadHostname("a bare host name: no scheme, port, path or spaces")
    if not name.isascii():
        # As browsers send it in Host (UTS #46, non-transitional): straße stays xn--strae-oqa,
        # where Python's own IDNA 2003 codec would make it strasse, another (someone else's) name.
        try:
            name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise BadHostname("not a valid internationalised domain name") from None
    if len(name) > MAX_LENGTH:
        raise BadHostname(f"at most {MAX_LENGTH} characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise BadHostname("a domain of at least two labels, such as dashboards.example.com")
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise BadHostname(
                "each label 1-63 letters, digits or hyphens, not starting or ending with a hyphen"
            )
    # An address is not a name: a top-level domain is never all digits (`10.0.0.1`, `127.1`).
    if labels[-1].isdigit() or _is_address(name):
        raise BadHostname("a domain name, not an IP address")
    if labels[-1] == "localhost":
        raise BadHostname("not localhost")
    return name


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def operator_host(base_url: str) -> str | None:
    """The host name of the operator's own address (TENANTRY_BASE_URL), which no partner may take."""
    host = urlsplit(base_url).hostname
    return host.rstrip(".").lower() if host else None


def request_host(raw: bytes | str) -> str:
    """A `Host` header's name, as the domains are kept: without the port, lower-case, no trailing dot."""
    host = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    if host.startswith("["):  # an IPv6 address never names a partner's domain
        return ""
    host = host.rpartition(":")[0] if ":" in host else host
    return host.strip().rstrip(".").lower()

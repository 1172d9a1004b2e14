"""The client address: whom the sign-in and published-link throttles count a guess against.

It is the connection's (the socket peer), unless that peer is one of `TENANTRY_TRUSTED_PROXIES`:
then it is the right-most address of `X-Forwarded-For` that is not itself a trusted proxy. Every
proxy appends the address it saw, so the entries to the left of the last one a trusted proxy wrote
are whatever the client chose to send; they are never believed. `tenantry serve` stops uvicorn from
rewriting the peer from these headers on its own (`proxy_headers=False`): this is the one place
that reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Protocol

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address
UNKNOWN = "unknown"


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The address to count a request against (in canonical form when it is an IP address)."""
    if not peer:
        return UNKNOWN
    address = _parse(peer)
    if address is None or not _is_trusted(address, trusted):
        return str(address) if address is not None else peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        previous = address
        address = _parse(hop)
        if address is None:
            # A malformed entry: nothing left of it can be believed; count the proxy that sent it.
            return str(previous)
        if not _is_trusted(address, trusted):
            return str(address)
    return str(address)


class _Peer(Protocol):
    @property
    def host(self) -> str: ...


class _Headers(Protocol):
    def getlist(self, key: str) -> list[str]: ...


class Request(Protocol):
    """What is read of a request (a Starlette `Request`): its peer and its headers."""

    @property
    def client(self) -> _Peer | None: ...
    @property
    def headers(self) -> _Headers: ...


def request_address(request: Request, trusted: Sequence[Network]) -> str:
    peer = request.client.host if request.client is not None else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)


def throttled_address(address: str) -> str:
    """What the throttles count an address as: an IPv6 client usually holds a whole /64 and can
    change address within it at will, so the /64 counts as one."""
    parsed = _parse(address)
    if isinstance(parsed, IPv6Address):
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed) if parsed is not None else address


def _parse(text: str) -> Address | None:
    """An address, also in the forms some proxies write with a port: `192.0.2.1:443`, `[::1]:443`."""
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    # ::ffff:192.0.2.1 is 192.0.2.1: one address must not have two spellings to count against.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)

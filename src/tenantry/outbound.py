"""The one guard every outgoing HTTP request goes through: data-source fetches and webhook POSTs.

A URL a user gives us must not reach the server's own network. So, for every connection:

- only `http` and `https`, and no user information (`user:pass@`) in the URL;
- the host name is resolved once, here, and every address it gives is checked: loopback,
  private, link-local, CGNAT (100.64/10), multicast, reserved, unspecified and documentation
  ranges are refused, and so are the IPv6 forms that carry one of those (IPv4-mapped, NAT64
  `64:ff9b::/96`, 6to4 `2002::/16`); an address literal is parsed the way the C library does,
  so `127.1`, `2130706433`, `0177.0.0.1` and `0x7f000001` are all 127.0.0.1;
- the socket is connected to the address that was checked, never by name (no second lookup
  that a DNS server could answer differently); TLS still sends and verifies the host name;
- redirects are followed by hand, at most 5, and each hop is checked again like the first;
- the whole exchange has one deadline: every socket operation gets the time that is left as its
  timeout, and the body is read in chunks with the deadline checked between them, so a server
  that drips a byte every few seconds is cut off at the deadline, not after it;
- the body is capped as it arrives, and a compressed one as it is decoded: servers are asked for
  `Accept-Encoding: identity`, and a body that comes compressed all the same (one coding, gzip or
  deflate) is decoded here a bounded piece at a time, so a few bytes that would unpack to
  gigabytes are cut off at the cap before memory grows. Several codings stacked
  (`gzip, gzip`) or one that is not known are refused.

`TENANTRY_OUTBOUND_ALLOW` (comma-separated CIDRs or host names) opens private destinations on
purpose. Failures are told in a few fixed words (`could not connect`, `timed out`,
`address not allowed`, `HTTP 503`, `unsupported content encoding`, `could not decode`), never in
a form that tells one closed port from another.

The SMTP server is not checked here: it is the operator's own configuration, not user input.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from tenantry.errors import InvalidInput
from tenantry.tls import tls_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolve = Callable[[str, int], Sequence[str]]

DEADLINE_SECONDS = 10.0
MAX_REDIRECTS = 5
USER_AGENT = "Tenantry/1"

# The fixed words a failure is reported in (a data source's `last_error`, a delivery's).
ADDRESS_NOT_ALLOWED = "address not allowed"
COULD_NOT_CONNECT = "could not connect"
TIMED_OUT = "timed out"
TOO_MANY_REDIRECTS = "too many redirects"
UNSUPPORTED_ENCODING = "unsupported content encoding"
UNDECODABLE = "could not decode"

# The content codings decoded here (`Content-Encoding`, RFC 9110 §8.4), by the names they go by.
# brotli and zstd are not: their packages are not installed, and httpx would not decode them either.
_CODINGS = {"gzip": "gzip", "x-gzip": "gzip", "deflate": "deflate"}

_REFUSED_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 included
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# Global unicast is 2000::/3; everything outside it (loopback, unspecified, IPv4-compatible,
# unique-local fc00::/7, link-local fe80::/10, multicast ff00::/8, ...) is refused outright.
_GLOBAL_V6 = ipaddress.IPv6Network("2000::/3")
_REFUSED_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class OutboundError(Exception):
    """An outgoing request failed. `str()` is one of the fixed phrases; `permanent` failures
    (a refused address) will not get better by trying again."""

    def __init__(self, words: str, *, permanent: bool = False) -> None:
        super().__init__(words)
        self.words, self.permanent = words, permanent


class BodyTooLarge(OutboundError):
    """The answer's body is larger than the caller accepts."""


class AddressRefused(Exception):
    """A host none of whose addresses may be reached (`Guard.addresses`). Not an OutboundError:
    raised inside the connection machinery, it must not be mistaken for a network error."""


def parse_address(host: str) -> IPAddress | None:
    """The address a host spells, in any spelling the C library accepts, or None for a name.

    `127.1`, `2130706433`, `0177.0.0.1` and `0x7f000001` all spell 127.0.0.1 to `inet_aton`,
    and so to whatever connects: they must be recognised as that address, not as names.
    """
    host = host.strip().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            return None
    # Only digits, hex digits, "x" and dots can spell an IPv4 address; `inet_aton` also accepts
    # trailing garbage after a space, which no host name has.
    if not host or any(c not in "0123456789abcdefxABCDEFX." for c in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (IPv4-mapped, NAT64, 6to4), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public Internet (see the module docstring for what is not)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
        if address not in _GLOBAL_V6 or any(address in n for n in _REFUSED_V6):
            return False
        return address.is_global
    return not any(address in n for n in _REFUSED_V4) and address.is_global


@dataclass(frozen=True)
class AllowList:
    """Private destinations an operator opened on purpose: networks and exact host names."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`10.0.0.0/8, 127.0.0.1, reports.internal` → an allow-list; ValueError names a bad entry."""
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for raw in text.split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if "/" in entry or parse_address(entry) is not None or ":" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"{raw.strip()!r} is not a network such as 10.0.0.0/8") from None
                continue
            labels = entry.split(".")
            if not all(label and len(label) <= 63 and _is_label(label) for label in labels):
                raise ValueError(f"{raw.strip()!r} is neither a network nor a host name")
            names.add(entry)
        return cls(tuple(networks), frozenset(names))

    def allows_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in n for n in self.networks if n.version == address.version)


def _is_label(label: str) -> bool:
    return all(c.isalnum() or c in "-_" for c in label) and not label.startswith("-")


def _system_resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class Answer:
    status_code: int
    headers: httpx.Headers
    body: bytes


@dataclass
class Guard:
    """Checks URLs and makes the requests. One per process, built from settings."""

    allow: AllowList = field(default_factory=AllowList)
    # How names become addresses; the system resolver, unless a test stands in for DNS.
    resolve: Resolve = _system_resolve

    @classmethod
    def from_settings(cls, settings: Any) -> Guard:
        return cls(AllowList.parse(settings.outbound_allow))

    # -- checking a URL -------------------------------------------------------------------

    def url_problem(self, url: str) -> str | None:
        """Why a URL may not be used, in a sentence, or None when it may.

        A host name is only resolved when a request is made (it may point elsewhere by then);
        here only what the URL itself says is checked: scheme, user information, and an address
        written as the host, in whatever spelling.
        """
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return "The URL is malformed."
        if parts.scheme.lower() not in ("http", "https"):
            return "Only http and https URLs are allowed."
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            return "A URL may not carry a user name or password."
        if not host:
            return "The URL has no host."
        try:  # as the request will be built: a host name IDNA 2008 refuses cannot be dialled
            httpx.URL(url).host  # noqa: B018 (decoding it is the check)
        except (httpx.InvalidURL, UnicodeError, ValueError):
            return "The URL's host name cannot be used (it is not a valid international domain name)."
        if self.allow.allows_name(host):
            return None
        address = parse_address(host)
        if address is not None and not is_public(address) and not self.allow.allows_address(address):
            return (
                f"{host} is not a public address (loopback, private, link-local and other "
                "internal addresses are not reachable from here)."
            )
        return None

    def require_allowed(self, url: str) -> None:
        """Refuse a URL given to a data source or a webhook (422 `validation_error` on `url`)."""
        problem = self.url_problem(url)
        if problem is not None:
            # Shaped like the schema's own 422s, so a client reads both the same way.
            error = {"loc": ["body", "url"], "msg": problem, "type": "url_not_allowed"}
            raise InvalidInput(f"url: {problem}", errors=[error])

    def addresses(self, host: str, port: int, deadline: float) -> list[IPAddress]:
        """The addresses `host` resolves to that may be connected to; `AddressRefused` if none may."""
        literal = parse_address(host)
        if literal is not None:
            found = [literal]
        else:
            found = [a for a in (parse_address(r) for r in self._lookup(host, port, deadline)) if a]
        if self.allow.allows_name(host):
            return found
        allowed = [a for a in found if is_public(a) or self.allow.allows_address(a)]
        if not allowed:
            raise AddressRefused(host)
        return allowed

    def _lookup(self, host: str, port: int, deadline: float) -> Sequence[str]:
        """Resolve on a thread of its own, so that a resolver that hangs cannot hold the request
        past its deadline (a lookup cannot be interrupted; the thread finishes on its own)."""
        outcome: list[Any] = []

        def run() -> None:
            try:
                outcome.append(list(self.resolve(host, port)))
            except Exception as exc:
                outcome.append(exc)

        thread = threading.Thread(target=run, name="tenantry-resolve", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        if not outcome:
            raise httpcore.ConnectTimeout("name lookup timed out")
        if isinstance(outcome[0], Exception):
            raise httpcore.ConnectError("name lookup failed")
        found: Sequence[str] = outcome[0]
        return found

    # -- making a request -----------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        deadline_seconds: float = DEADLINE_SECONDS,
        max_bytes: int = 0,
        follow_redirects: bool = False,
    ) -> Answer:
        """Make one request (following up to 5 redirects when asked) within `deadline_seconds`
        in total, and read at most `max_bytes` of the answer's body (0: do not read it).

        Raises `OutboundError` (or `BodyTooLarge`) with one of the fixed phrases.
        """
        deadline = time.monotonic() + deadline_seconds
        backend = _Backend(self, deadline)
        transport = _Transport(backend)
        try:
            with httpx.Client(
                transport=transport,
                timeout=deadline_seconds,
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would be dialled instead of the target
                # Not httpx's "gzip, deflate": the answer is to be read as it is sent (see `_read`).
                # A caller's own Accept-Encoding replaces it.
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            ) as client:
                request = client.build_request(method, url, headers=headers, content=content)
                for _hop in range(MAX_REDIRECTS + 1):
                    if self.url_problem(str(request.url)) is not None:
                        raise OutboundError(ADDRESS_NOT_ALLOWED, permanent=True)
                    response = client.send(request, stream=True)
                    try:
                        if follow_redirects and response.next_request is not None:
                            request = response.next_request
                            continue
                        body = _read(response, max_bytes, deadline)
                        return Answer(response.status_code, response.headers, body)
                    finally:
                        response.close()
                raise OutboundError(TOO_MANY_REDIRECTS)
        except OutboundError:
            raise
        except (AddressRefused, httpx.InvalidURL, UnicodeError):
            # UnicodeError: a host name IDNA 2008 refuses (stored before such URLs were refused).
            raise OutboundError(ADDRESS_NOT_ALLOWED, permanent=True) from None
        except (httpx.HTTPError, httpcore.NetworkError, httpcore.TimeoutException, OSError, ssl.SSLError):
            if time.monotonic() >= deadline:
                raise OutboundError(TIMED_OUT) from None
            raise OutboundError(COULD_NOT_CONNECT) from None


def _read(response: httpx.Response, max_bytes: int, deadline: float) -> bytes:
    """At most `max_bytes` of the body, decoded, before the deadline; `BodyTooLarge` beyond that.

    The bytes are read as they come off the wire (`iter_raw`, never httpx's own decoding, which
    unpacks a whole network read in one go and stacks codings) and counted twice: what arrives
    and what it decodes to, each against the cap, the decoded bytes as they are produced.
    """
    if max_bytes <= 0:
        return b""
    declared = response.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge("too large")
    decoder = _Decoder(_coding(response.headers))
    chunks, received, size = [], 0, 0
    for raw in response.iter_raw():
        if time.monotonic() >= deadline:
            raise OutboundError(TIMED_OUT)
        received += len(raw)
        if received > max_bytes:
            raise BodyTooLarge("too large")
        # One byte past the cap is enough to know it is too large: never more is decoded.
        chunk = decoder.decode(raw, max_bytes - size + 1)
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge("too large")
        chunks.append(chunk)
    return b"".join(chunks)


def _coding(headers: httpx.Headers) -> str | None:
    """The one content coding a body is in (None: as it is); `OutboundError` when there are
    several, or one not decoded here."""
    codings = [
        coding.strip().lower()
        for value in headers.get_list("content-encoding")
        for coding in value.split(",")
    ]
    codings = [coding for coding in codings if coding and coding != "identity"]
    if not codings:
        return None
    if len(codings) > 1 or codings[0] not in _CODINGS:
        raise OutboundError(UNSUPPORTED_ENCODING)
    return _CODINGS[codings[0]]


class _Decoder:
    """Decodes a body in one content coding (or none) piece by piece, never giving out more than
    it is asked for: a small input that unpacks to a great deal is only unpacked that far.
    Bytes after the end of the compressed stream are ignored, as httpx ignores them."""

    def __init__(self, coding: str | None) -> None:
        self.coding = coding
        self.pending = b""  # deflate: the first bytes, until there are two to tell the header by
        self.inflater: Any = zlib.decompressobj(zlib.MAX_WBITS | 16) if coding == "gzip" else None

    def decode(self, data: bytes, limit: int) -> bytes:
        """What `data` decodes to, at most `limit` bytes (input past that is left unread)."""
        if self.coding is None:
            return data
        if self.inflater is None:
            # "deflate" is meant to be zlib-wrapped (RFC 1950), but some servers send it raw.
            self.pending += data
            if len(self.pending) < 2:
                return b""
            data, self.pending = self.pending, b""
            zlib_header = (data[0] & 0x0F) == 8 and (data[0] >> 4) <= 7 and (data[0] << 8 | data[1]) % 31 == 0
            self.inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
        pieces = []
        try:
            while data and limit > 0 and not self.inflater.eof:
                piece = self.inflater.decompress(data, limit)
                pieces.append(piece)
                limit -= len(piece)
                data = self.inflater.unconsumed_tail
        except zlib.error:
            raise OutboundError(UNDECODABLE) from None
        return b"".join(pieces)


class _Stream(httpcore.NetworkStream):
    """A socket stream whose every operation is bounded by the time left before the deadline."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self.inner, self.deadline = inner, deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("deadline reached")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        # `server_hostname` is the URL's host name: SNI and certificate checks use the name,
        # while the socket underneath is connected to the checked address.
        left = self._left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, left), self.deadline)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.SyncBackend):
    """Resolves and checks the host, then connects to a checked address (never by name)."""

    def __init__(self, guard: Guard, deadline: float) -> None:
        self.guard, self.deadline = guard, deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in self.guard.addresses(host, port, self.deadline):
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("deadline reached")
            try:
                stream = super().connect_tcp(
                    str(address),
                    port,
                    timeout=left if timeout is None else min(timeout, left),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _Stream(stream, self.deadline)
        assert failure is not None  # `addresses` never answers an empty list
        raise failure


class _Transport(httpx.HTTPTransport):
    """httpx's transport, with its connection pool on the guarded backend."""

    def __init__(self, backend: _Backend) -> None:
        super().__init__(verify=tls_context(), trust_env=False, retries=0)
        # httpx has no parameter for the network backend: give its pool one (httpx 0.28).
        self._pool = httpcore.ConnectionPool(ssl_context=tls_context(), network_backend=backend, retries=0)

"""Security headers on every answer, and the per-response nonce of the pages' inline code.

`with_security_headers` adds them to an answer's headers as the answer starts: the outer layer of
the request path (`api.middleware.RequestMiddleware`) calls it for every HTTP answer, in the send
wrapper it already has, so adding them costs no layer of its own.

Every answer says `X-Content-Type-Options: nosniff`. A page (an HTML answer that did not set a
policy of its own) also gets a Content-Security-Policy that runs only the scripts and styles of
this server and the inline ones carrying this response's nonce, and that no other site may frame;
its links send a Referer only to this origin. Pages with other needs set their own policy, which
is kept: the published dashboard (embedded in other sites on purpose) and the API docs.
"""

from __future__ import annotations

import base64
import os
from collections import deque

from starlette.requests import Request
from starlette.types import Scope

# Nonces drawn ahead (`new_nonce`); a deque hands each out once, from any thread.
_NONCES_DRAWN = 256
_nonces: deque[str] = deque()
# A forked process draws its own: it must not hand out its parent's.
os.register_at_fork(after_in_child=_nonces.clear)

# Where a request keeps its nonce (the request state, shared by every Request of one scope).
_NONCE = "tenantry_csp_nonce"


def new_nonce() -> str:
    """128 random bits, as CSP asks of a nonce, in characters that need no escaping anywhere.

    Drawn from the operating system's generator 256 at a time (one system call, not one a page):
    each is 16 bytes of its output that no other nonce shares."""
    try:
        return _nonces.popleft()
    except IndexError:
        drawn = os.urandom(16 * _NONCES_DRAWN)
        # As `secrets.token_urlsafe(16)` writes 16 bytes: 22 characters, the padding left off.
        _nonces.extend(
            base64.urlsafe_b64encode(drawn[i : i + 16])[:22].decode() for i in range(0, len(drawn), 16)
        )
        return _nonces.popleft()


def csp_nonce(request: Request) -> str:
    """This response's nonce, made on first use; the middleware names it in the policy."""
    state = request.scope.setdefault("state", {})
    nonce = state.get(_NONCE)
    if nonce is None:
        nonce = state[_NONCE] = new_nonce()
    return str(nonce)


def page_policy(nonce: str | None) -> str:
    """The policy of a console, portal or sign-in page: nothing from other origins, no inline
    script or style without the nonce, no plugins, no <base>, forms only to this server, and no
    framing (a framed console page could be dressed up to trick a user into clicking)."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    style = f"'self' 'nonce-{nonce}'" if nonce else "'self'"
    return (
        "default-src 'self'; "
        f"script-src {script}; "
        f"style-src {style}; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'none'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


_NOSNIFF = (b"x-content-type-options", b"nosniff")


def with_security_headers(raw: list[tuple[bytes, bytes]], scope: Scope) -> list[tuple[bytes, bytes]]:
    """The answer's headers with ours added (to `raw` itself, a list the caller owns, read in one
    pass: this runs for every answer)."""
    content_type = None
    nosniff = policy = referrer = False
    for name, value in raw:
        name = name.lower()
        if name == b"content-type":
            if content_type is None:
                content_type = value
        elif name == b"x-content-type-options":
            nosniff = True
        elif name == b"content-security-policy":
            policy = True
        elif name == b"referrer-policy":
            referrer = True
    if not nosniff:
        raw.append(_NOSNIFF)
    if content_type is not None and content_type.startswith(b"text/html") and not policy:
        nonce = scope.get("state", {}).get(_NONCE)
        raw.append((b"content-security-policy", page_policy(nonce).encode("latin-1")))
        raw.append((b"x-frame-options", b"DENY"))
        if not referrer:
            raw.append((b"referrer-policy", b"same-origin"))
    return raw

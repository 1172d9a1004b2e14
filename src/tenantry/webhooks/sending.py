"""How a delivery looks on the wire: the JSON body, the signature, the POST.

`Tenantry-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` with the
webhook's secret. The timestamp is inside the signed text, so a receiver that checks it is
recent cannot be fed an old delivery again; the event id in the body (and in
`Tenantry-Event-Id`) stays the same across retries, so a receiver deduplicates by it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from tenantry.outbound import Guard, OutboundError

TIMEOUT_SECONDS = 10.0
USER_AGENT = "Tenantry-Webhooks/1"


def body(event_id: str, event_type: str, created_at: str, data: dict[str, Any]) -> bytes:
    document = {"id": event_id, "type": event_type, "created_at": created_at, "data": data}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    signed = f"{timestamp}.".encode() + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def headers(event_id: str, secret: str, timestamp: int, raw_body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Tenantry-Event-Id": event_id,
        "Tenantry-Signature": f"t={timestamp},v1={signature(secret, timestamp, raw_body)}",
    }


@dataclass(frozen=True)
class PostResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    # A failure that trying again cannot mend (the address is refused): given up at once.
    permanent: bool = False


def post(
    guard: Guard, url: str, raw_body: bytes, request_headers: dict[str, str], timeout: float = TIMEOUT_SECONDS
) -> PostResult:
    """POST once through the outgoing-request guard, within `timeout` seconds in total; any 2xx
    is success. Redirects are not followed: they count as failures. Errors are the guard's fixed
    words (`could not connect`, `timed out`, `address not allowed`, `HTTP 503`)."""
    try:
        answer = guard.request(
            "POST", url, headers=request_headers, content=raw_body, deadline_seconds=timeout
        )
    except OutboundError as exc:
        return PostResult(False, None, exc.words, permanent=exc.permanent)
    if 200 <= answer.status_code < 300:
        return PostResult(True, answer.status_code)
    return PostResult(False, answer.status_code, f"HTTP {answer.status_code}")

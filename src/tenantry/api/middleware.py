"""The request path's outer layer, as pure ASGI middleware (no per-request objects beyond the scope).

`RequestMiddleware` wraps every HTTP request:

- **security headers** on every answer it starts, its own refusals and errors included
  (`web.headers.with_security_headers`);
- **a request id** (`X-Request-ID`: the caller's when it is a short token, else a new one), bound
  to every log line of the request and returned in the answer;
- **a body limit**: a body larger than `TENANTRY_MAX_BODY_BYTES` is refused with 413
  `payload_too_large` as soon as that is known (from `Content-Length`, or while it streams in),
  without reading the rest (a browser's form outside `/api/` gets a plain page saying so);
- **admission**: at most `max_concurrent_requests` requests of this process run at once; the
  others wait their turn on the event loop, and one that waits longer than
  `request_queue_timeout_seconds` gets 503 `overloaded` with `Retry-After`. The limit is what keeps
  a burst from wedging the server: each admitted request holds at most two database connections
  and one worker thread at a time, and the limit leaves room for both, so no request can wait
  for a connection (or a thread) that another admitted request holds while waiting for it.
  `/healthz`, `/metrics` and static files are not queued;
- **errors nobody else handled**: a database fault (unreachable, locked, full, pool exhausted)
  answers 503 `database_unavailable` with `Retry-After`; anything else 500 `internal_error` with
  the request id, logged as one line (type, message, request id, route), never with local
  variables;
- **metrics**: `tenantry_http_requests_total{method,route,status}`,
  `tenantry_http_request_duration_seconds{method,route}` and the gauges
  `tenantry_http_requests_in_progress` / `tenantry_http_requests_queued`. The route is the
  matched path template, so the number of series stays small.

Once admitted, a request one of the lean routes or hot pages answers is answered from here
(`api.lean.HotPath`), without the layers below, which would do nothing else for it; any other goes
on down the stack.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import sqlite3
import time
from collections import deque
from html import escape
from typing import TYPE_CHECKING, Any

import asyncpg
import psycopg
import structlog
from prometheus_client import Gauge
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.api.problems import PROBLEM, encode, problem_body
from tenantry.api.request_metrics import request_series
from tenantry.db.reads import ASYNCPG_FAULTS
from tenantry.errors import DatabaseUnavailable, InvalidInput, Overloaded, PayloadTooLarge, TenantryError
from tenantry.logs import REQUEST_ID, describe_exception
from tenantry.web.headers import with_security_headers

if TYPE_CHECKING:
    from tenantry.api.lean import HotPath

log = structlog.get_logger("tenantry.http")

# `tenantry_http_requests_total` and `tenantry_http_request_duration_seconds` (`api.request_metrics`).
SERIES = request_series()
IN_PROGRESS = Gauge("tenantry_http_requests_in_progress", "Requests being served by this process.")
QUEUED = Gauge("tenantry_http_requests_queued", "Requests waiting for their turn in this process.")

UNQUEUED_PATHS = ("/healthz", "/metrics", "/static/")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._\-]{8,64}")
# Faults of the database itself (not of the request): the server is down, restarting, locked,
# out of disk, or every connection is taken.
DATABASE_FAULTS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    *ASYNCPG_FAULTS,  # the reads on the event loop (db.reads)
)
# A value the database cannot store (a NUL byte in text on PostgreSQL, a number out of range):
# the request is malformed, and its transaction is rolled back.
DATA_FAULTS: tuple[type[BaseException], ...] = (sa_exc.DataError, psycopg.DataError, asyncpg.DataError)


class _BodyTooLarge(HTTPException):
    """Raised while a body streams in. An HTTPException, so that the framework's body parsing
    passes it on as it is (it turns other exceptions into 400) and it is rendered as 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the {limit:,} bytes accepted.")


class Admission:
    """At most `limit` requests at once; the rest wait up to `timeout` seconds for a turn, first
    come first served.

    Under load most requests wait their turn, so waiting costs little: a future each, in a queue.
    They all wait equally long, so the queue is in the order of their deadlines too, and one timer
    does for all of them, set for the deadline of the first one still waiting (a timer each cost a
    handle and two heap operations a request, and a heap of cancelled handles). A request that
    leaves hands its turn straight to the first one still waiting."""

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit, self.timeout = limit, timeout
        self._running = 0
        # (deadline on the loop's clock, turn) for each waiting request, in order of arrival.
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self.queued = 0  # read by the gauge when scraped (cheaper than the gauge's lock)
        QUEUED.set_function(lambda: self.queued)

    def try_enter(self) -> bool:
        """A turn now, when one is free and no one is waiting (no coroutine for the usual case)."""
        if self._running < self.limit and not self._waiting:
            self._running += 1
            return True
        return False

    async def enter(self) -> None:
        if self.try_enter():
            return
        loop = asyncio.get_running_loop()
        turn: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + self.timeout
        self._waiting.append((deadline, turn))
        if self._timer is None or self._timer_loop is not loop:
            self._timer, self._timer_loop = loop.call_at(deadline, self._expire), loop
        self.queued += 1
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():  # given a turn, then cancelled: pass it on
                self.leave()
            raise
        finally:
            self.queued -= 1

    def leave(self) -> None:
        while self._waiting:
            _, turn = self._waiting.popleft()
            if not turn.done():  # not gone (timed out, cancelled)
                turn.set_result(None)
                return
        self._running -= 1

    def _expire(self) -> None:
        """Refuse every request that has waited its time; set the timer for the next one."""
        loop = asyncio.get_running_loop()
        if loop is not self._timer_loop:
            return  # a timer left on a loop whose requests no longer wait here
        self._timer = None
        now = loop.time()
        while self._waiting:
            deadline, turn = self._waiting[0]
            if not turn.done():
                if deadline > now:
                    self._timer = loop.call_at(deadline, self._expire)
                    return
                turn.set_exception(
                    Overloaded("The server is busy; try again in a moment.", headers={"Retry-After": "1"})
                )
            self._waiting.popleft()


def classify(exc: BaseException) -> TenantryError | None:
    """The answer a fault of the database deserves, or None for a bug (500)."""
    if isinstance(exc, DATABASE_FAULTS) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        return DatabaseUnavailable(
            "The database is not available right now; try again in a few seconds.",
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, DATA_FAULTS):
        return InvalidInput(
            "The request holds a value that cannot be stored (a NUL character, or a number too large)."
        )
    return None


class RequestMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, admission: Admission, hot: HotPath | None = None
    ) -> None:
        self.app = app
        self.hot = hot  # the lean routes' and hot pages' requests, answered without the layers below
        self.max_body_bytes = max_body_bytes
        self.admission = admission
        # Counted in a plain attribute (the gauge reads it when scraped): cheaper than the gauge's lock.
        self.in_progress = 0
        IN_PROGRESS.set_function(lambda: self.in_progress)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = scope["headers"]
        request_id = _incoming_request_id(headers) or _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        bound = REQUEST_ID.set(request_id)
        status = {"code": 500, "started": False}
        request_id_header = (b"x-request-id", request_id.encode())
        # HEAD is answered as GET is, headers alone (RFC 9110 §9.3.2), by every GET route. The
        # server's own scope keeps HEAD: it is what tells it to send no body.
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
                raw = list(message.get("headers", ()))
                raw.append(request_id_header)
                message["headers"] = with_security_headers(raw, scope)
            elif head:
                message = {**message, "body": b""}
            await send(message)

        admitted = False
        self.in_progress += 1
        try:
            declared = _content_length(headers)
            if declared is not None and declared > self.max_body_bytes:
                raise PayloadTooLarge(self._too_large())
            path: str = scope["path"]
            if not path.startswith(UNQUEUED_PATHS):
                if not self.admission.try_enter():
                    await self.admission.enter()
                admitted = True
            # A request without Content-Length or Transfer-Encoding has no body (RFC 9112 §6.3):
            # nothing to count.
            has_body = declared is not None or _has_header(headers, b"transfer-encoding")
            inner = self._limited(receive) if has_body else receive
            hot = self.hot
            found = hot.find(scope) if hot is not None else None
            if hot is None or found is None:
                await self.app(scope, inner, send_wrapper)
            else:
                await hot.serve(found, scope, inner, send_wrapper)
        except Exception as exc:  # the last line: nothing below handled it
            await self._answer_error(scope, exc, status, send_wrapper)
        finally:
            if admitted:
                self.admission.leave()
            self.in_progress -= 1
            method = scope["method"]
            SERIES.record(
                method if method in _METHODS else "other",
                _route(scope),
                status["code"],
                time.perf_counter() - started,
            )
            REQUEST_ID.reset(bound)

    def _too_large(self) -> str:
        return f"The request body is larger than the {self.max_body_bytes:,} bytes accepted."

    def _limited(self, receive: Receive) -> Receive:
        received = 0
        limit = self.max_body_bytes

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        return limited

    async def _answer_error(self, scope: Scope, exc: Exception, status: dict[str, Any], send: Send) -> None:
        if isinstance(exc, _BodyTooLarge):
            error: TenantryError | None = PayloadTooLarge(self._too_large())
        elif isinstance(exc, TenantryError):
            error = exc
        else:
            error = classify(exc)
            if error is None:
                log.error(
                    "unhandled error", method=scope["method"], route=_route(scope), **describe_exception(exc)
                )
            elif isinstance(error, DatabaseUnavailable):
                log.warning("database unavailable", route=_route(scope), **describe_exception(exc))
        if status["started"]:
            return  # the answer is already on its way: nothing more can be said
        request_id = scope["state"].get("request_id")
        if error is None:
            body = problem_body(
                500, "internal_error", "Internal error",
                "Something went wrong on our side; it has been logged.", request_id=request_id,
            )  # fmt: skip
            headers: dict[str, str] = {}
        else:
            body, headers = error.to_problem(), error.headers
        if isinstance(error, PayloadTooLarge) and _wants_page(scope):
            # A form sent from a page (a file too large to import): a page, not JSON, in the tab.
            await send_page(send, 413, "Too large", self._too_large() + " Go back and send a smaller one.")
            return
        await send_problem(send, body, {**scope["state"].get("rate_limit_headers", {}), **headers})


def _wants_page(scope: Scope) -> bool:
    """A browser's request for a page (it accepts HTML), not one of the API's."""
    if scope["path"].startswith("/api/"):
        return False
    accept = next((v for k, v in scope["headers"] if k == b"accept"), b"")
    return b"text/html" in accept


async def send_page(send: Send, status: int, heading: str, text: str) -> None:
    """A plain page of one sentence (no script, no style: nothing the CSP must allow)."""
    payload = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(heading)}</title></head><body><main><h1>{escape(heading)}</h1>"
        f"<p>{escape(text)}</p></main></body></html>"
    ).encode()
    raw = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def send_problem(send: Send, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    payload = encode(body)
    raw = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(payload)).encode()),
        *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()),
    ]
    await send({"type": "http.response.start", "status": body["status"], "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def _incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _REQUEST_ID.fullmatch(text) else None
    return None


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


# Request ids: a random prefix per process and a counter, unique without a system call per request
# (they name a request in the logs; they are not secrets).
_ID_PREFIX = secrets.token_hex(4)
_ID_COUNTER = itertools.count()


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFFFFFF:08x}"


def _has_header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> bool:
    return any(name == wanted for name, _ in headers)


# A method is whatever token the client sends: any other than these is counted as "other", so no
# request can add a series of its own.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"

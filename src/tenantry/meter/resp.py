"""A small Redis client for the event loop's hot calls: one connection, every command pipelined.

Every metered API request asks Redis once or twice (the burst window, the day's counter) and every
view of a client reads its count. redis-py's asyncio client costs about 125 µs of CPU a call on
this project's 2-core test machine (a pool checkout, a lock, a retry wrapper, a task for each
time-out); the same call on one asyncio protocol costs about 45 µs, most of it the system calls.

So the loop's calls go through `RespClient`: one connection per event loop, which all requests
share. Commands are pipelined, never waiting for the replies of the others: those sent in the
same step of the event loop (the calls of the requests that arrived together) leave in one write
at the end of that step, one system call for them all, and Redis answers them in one too. Redis
answers in order, and each reply resolves the oldest waiting call (RESP2). One timer per
connection, set for the oldest waiting call's deadline, times the calls out (a timer each cost a
handle, a heap push and a cancelled handle left in the loop's heap: 5% of a view of a client on
PostgreSQL + Redis, with the admission's timers). A call that times out leaves its place in the
queue, so a late reply still lands on it, not on the next call. When the
connection breaks, every waiting call fails with `ConnectionError` and the next call reconnects.

Only quick commands (a blocking one would hold up every call behind it on the connection), and
only what the meter needs: `execute` (MGET, GET, SET, ...) and `run_script` (EVALSHA, with EVAL
when the server does not know the script yet). Errors are redis-py's (`redis.exceptions`), so
callers handle both clients alike. `redis://`, `rediss://` (TLS) and `unix://` URLs, with a
user, a password and a database number, as redis-py reads them.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from functools import cache
from typing import Any

from redis import exceptions as rx
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

Value = bytes | str | int | float


def encode(args: Sequence[Value]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [_ARRAYS.get(len(args)) or b"*%d\r\n" % len(args)]
    kept = _BULKS.get
    for arg in args:
        kind = type(arg)
        bulk = kept(arg) if kind is str or kind is int else None  # type: ignore[arg-type]
        parts.append(bulk if bulk is not None else _bulk(arg))
    return b"".join(parts)


# The bulk strings of the text and whole numbers sent lately, made once: the meter's calls repeat
# the same keys, script names and limits on every request (a metered call's thirteen arguments cost
# 4 µs to encode, 2 µs with these). Kept by value, for text and `int` only: a float or a bool equal
# to a kept number (1.0, True) is written otherwise. Cleared when full.
_BULKS: dict[str | int, bytes] = {}
_BULKS_KEPT = 4096
_ARRAYS = {count: b"*%d\r\n" % count for count in range(32)}


def _bulk(arg: Value) -> bytes:
    if isinstance(arg, bytes):
        data = arg
    elif isinstance(arg, str):
        data = arg.encode()
    elif isinstance(arg, int | float):
        data = repr(arg).encode()
    else:
        raise TypeError(f"a Redis argument must be bytes, str, int or float, not {type(arg).__name__}")
    bulk = b"$%d\r\n%s\r\n" % (len(data), data)
    kind = type(arg)
    if kind is str or kind is int:
        if len(_BULKS) >= _BULKS_KEPT:
            _BULKS.clear()
        _BULKS[arg] = bulk  # type: ignore[index]
    return bulk


class _Incomplete(Exception):
    """The buffer ends before the reply does: wait for more data."""


_INCOMPLETE = _Incomplete()


def parse(buffer: bytes, start: int) -> tuple[Any, int]:
    """One reply from `buffer` at `start`: (value, where the next reply starts). An error reply is
    returned as a `ResponseError` (not raised), so that it reaches its own caller only."""
    end = buffer.find(b"\r\n", start)
    if end < 0:
        raise _INCOMPLETE
    kind, line = buffer[start : start + 1], buffer[start + 1 : end]
    after = end + 2
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, after
        if len(buffer) < after + length + 2:
            raise _INCOMPLETE
        return buffer[after : after + length], after + length + 2
    if kind == b":":
        return int(line), after
    if kind == b"+":
        return line, after
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, after
        items = []
        for _ in range(count):
            item, after = parse(buffer, after)
            items.append(item)
        return items, after
    if kind == b"-":
        message = line.decode(errors="replace")
        return (rx.NoScriptError if message.startswith("NOSCRIPT") else rx.ResponseError)(message), after
    raise rx.ConnectionError(f"Redis sent a reply this client cannot read: {buffer[start:end][:40]!r}")


@cache
def _sha1(script: str) -> str:
    """The name Redis knows a script by (the meter has a handful, each asked for on every call)."""
    return hashlib.sha1(script.encode()).hexdigest()


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None  # asyncio's or uvloop's (not an asyncio.Transport subclass)
        # (deadline on the loop's clock, caller) for each command sent, in the order Redis answers.
        self.waiting: deque[tuple[float, asyncio.Future[Any]]] = deque()
        # One timer for all the calls: set for the deadline of the oldest still waiting. Each call
        # waits as long (the client's time-out), so the queue is in the order of their deadlines
        # (after the time-out is shortened, a later call may be failed late, at an earlier one's).
        self.timer: asyncio.TimerHandle | None = None
        # How many calls at the head of `waiting` have left (timed out, cancelled): the timer looks
        # past them without walking them again (Redis stalled, thousands may wait for replies).
        self.settled = 0
        self.buffer = b""
        self.lost: Exception | None = None
        # Commands sent in the running step of the event loop, written together when it ends.
        self.held: list[bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        position = 0
        try:
            while position < len(buffer):
                value, position = parse(buffer, position)
                if not self.waiting:
                    raise rx.ConnectionError("Redis sent a reply nobody asked for")
                _, waiter = self.waiting.popleft()
                if self.settled:
                    self.settled -= 1
                if not waiter.done():  # a caller that timed out has left
                    if isinstance(value, rx.ResponseError):
                        waiter.set_exception(value)
                    else:
                        waiter.set_result(value)
        except _Incomplete:
            pass
        except (rx.ConnectionError, ValueError) as exc:
            self._fail(exc if isinstance(exc, rx.ConnectionError) else rx.ConnectionError(str(exc)))
            self.transport.abort()
            return
        self.buffer = buffer[position:]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(rx.ConnectionError(f"Redis closed the connection ({exc or 'end of stream'})"))

    def _fail(self, error: Exception) -> None:
        self.lost = error
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.settled = 0
        while self.waiting:
            _, waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)

    def send(self, command: bytes, timeout: float) -> asyncio.Future[Any]:
        """The reply to `command`, or `redis.exceptions.TimeoutError` when none came within
        `timeout` seconds."""
        if self.lost is not None:
            raise self.lost
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        deadline = loop.time() + timeout
        self.waiting.append((deadline, waiter))
        if self.timer is None:
            self.timer = loop.call_at(deadline, self._expire)
        if self.held is None:
            self.held = [command]
            loop.call_soon(self._write_held)
        else:
            self.held.append(command)
        return waiter

    def _expire(self) -> None:
        """Fail every call that has waited its time (each keeps its place in the queue, so its late
        reply lands on it, not on the next call); set the timer for the next one."""
        self.timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting, index = self.waiting, self.settled
        while index < len(waiting):
            deadline, waiter = waiting[index]
            if not waiter.done():
                if deadline > now:
                    self.timer = loop.call_at(deadline, self._expire)
                    break
                waiter.set_exception(rx.TimeoutError("Redis did not answer in time"))
            index += 1
        self.settled = index

    def _write_held(self) -> None:
        held, self.held = self.held, None
        if held and self.lost is None and not self.transport.is_closing():
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))


class RespClient:
    """One connection to Redis for the running event loop (see the module's description)."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.timeout = timeout
        options = parse_url(url)
        self._db = int(options.get("db") or 0)
        self._username, self._password = options.get("username"), options.get("password")
        self._path: str | None = options.get("path")
        self._host = options.get("host") or "localhost"
        self._port = int(options.get("port") or 6379)
        self._ssl: ssl.SSLContext | None = None
        if options.get("connection_class") is SSLConnection:
            self._ssl = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
            if options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        elif options.get("connection_class") is not UnixDomainSocketConnection:
            self._path = None
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._scripts: set[str] = set()

    async def execute(self, *args: Value) -> Any:
        """Run one command and return its reply (bytes, int, None, or a list of them)."""
        command = encode(args)
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connected()
        return await protocol.send(command, self.timeout)

    async def run_script(self, script: str, keys: Sequence[Value], args: Sequence[Value]) -> Any:
        """EVALSHA of `script`, or EVAL when this server does not know it yet (a restart)."""
        sha = _sha1(script)
        if sha in self._scripts:
            try:
                return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
            except rx.NoScriptError:
                self._scripts.discard(sha)
        reply = await self.execute("EVAL", script, len(keys), *keys, *args)
        self._scripts.add(sha)
        return reply

    async def _connected(self) -> _Protocol:
        """A new connection, within the time-out (the first caller connects; the others wait for it)."""
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(connecting)
        except TimeoutError:  # asyncio's (the built-in): redis-py's is not one
            raise rx.TimeoutError(f"Redis did not answer within {self.timeout} s") from None
        except OSError as exc:  # refused, reset, unreachable (the built-in ConnectionError too)
            raise rx.ConnectionError(f"Redis cannot be reached: {exc}") from exc
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._path is not None:
            _, protocol = await loop.create_unix_connection(_Protocol, self._path)
        else:
            _, protocol = await loop.create_connection(_Protocol, self._host, self._port, ssl=self._ssl)
        setup: list[bytes] = []
        if self._password is not None:
            user = [] if self._username is None else [self._username]
            setup.append(encode(["AUTH", *user, self._password]))
        if self._db:
            setup.append(encode(["SELECT", self._db]))
        try:
            for reply in await asyncio.gather(*(protocol.send(command, self.timeout) for command in setup)):
                if reply != b"OK":
                    raise rx.ConnectionError(f"Redis refused the connection's set-up: {reply!r}")
        except rx.ResponseError as exc:  # a wrong password, a database number out of range
            protocol.transport.abort()
            raise rx.ConnectionError(f"Redis refused the connection's set-up: {exc}") from exc
        except BaseException:
            protocol.transport.abort()
            raise
        self._protocol = protocol
        self._scripts.clear()  # perhaps another server: it may not know them
        return protocol

    async def aclose(self) -> None:
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.close()

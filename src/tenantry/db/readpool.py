"""The asyncpg connections of one event loop, for the hot reads (`db.reads`).

asyncpg's own pool is general: every check-out goes through a timeout scope, a connection holder
and a proxy object, and every release through a reset and a cancellation check. The reads need
none of it: each is one statement outside any transaction, on a connection that no other code
sees. Here a check-out takes an idle connection from a list and a release puts it back, a few
microseconds each, against about 30 µs of CPU per read for asyncpg's pool (in-process A/B on this
project's 2-core test machine: 579 µs against 520 µs for a GET of a client, two reads). What it
keeps:

- at most `max_size` connections, made when first needed (a database that is down does not stop
  the app from starting); a caller that finds them all busy waits its turn, first come first
  served, for up to `timeout` seconds and then gets `TimeoutError`;
- a connection the server closed is not handed out again, and `expire()` closes the idle ones
  (after one was found dead, the others most likely died with it);
- a connection given back after an error other than the server's answer to the statement
  (a cancelled request in the middle of a read, a lost socket) is closed, not reused: it may be
  mid-statement (the close waits for asyncpg's cancel request, so the server stops the statement);
- idle connections are closed after `max_idle_seconds` (checked at each check-out), so a quiet
  process does not hold connections for ever.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

# As asyncpg's pool does by default: an idle connection is closed after five minutes.
MAX_IDLE_SECONDS = 300.0


class ReadPool:
    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        max_size: int,
        timeout: float,
        max_idle_seconds: float = MAX_IDLE_SECONDS,
    ) -> None:
        self._connect = connect
        self.max_size, self.timeout, self.max_idle_seconds = max_size, timeout, max_idle_seconds
        self._idle: list[tuple[Any, float]] = []  # (connection, when it was given back)
        self._size = 0  # connections made and not yet closed: idle, checked out or being made
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self) -> Any:
        """An open connection: an idle one, a new one while there is room, or the next one given
        back. `TimeoutError` after `timeout` seconds; the connection error when one cannot be made."""
        deadline: float | None = None
        while True:
            if self._closed:
                raise asyncpg.InterfaceError("the pool of reads is closed")
            connection = self._take_idle()
            if connection is not None:
                return connection
            if self._size < self.max_size:
                self._size += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._size -= 1
                    self._hand_over(None)  # a waiter may try in its turn
                    raise
            if deadline is None:
                deadline = time.monotonic() + self.timeout
            connection = await self._wait(deadline)
            if connection is not None:
                return connection
            # None: a connection was closed, so there is room to make one; go round again.

    def release(self, connection: Any, *, reusable: bool = True) -> None:
        """Give a connection back; one that is closed or not `reusable` is closed and forgotten."""
        if self._closed or not reusable or connection.is_closed():
            self._forget(connection)
            _close_later(connection)
            return
        if not self._hand_over(connection):
            self._idle.append((connection, time.monotonic()))

    def expire(self) -> None:
        """Cut off every idle connection, with no round trip (they are most likely dead: one of
        them was)."""
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._discard(connection)

    async def close(self) -> None:
        """Close the idle connections now and each busy one as it is given back."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the pool of reads is closed"))
        idle, self._idle = self._idle, []
        for connection, _ in idle:
            self._forget(connection)
        await asyncio.gather(*(_close(connection) for connection, _ in idle))

    def _take_idle(self) -> Any:
        now = time.monotonic()
        while self._idle:
            connection, since = self._idle.pop()  # the most recently used: the most likely alive
            if connection.is_closed() or now - since > self.max_idle_seconds:
                self._forget(connection)
                _close_later(connection)
                continue
            return connection
        return None

    async def _wait(self, deadline: float) -> Any:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                return await waiter
        except BaseException:
            # Timed out or cancelled: a connection handed over at the same moment goes back.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                handed = waiter.result()
                if handed is not None:
                    self.release(handed)
                else:
                    self._hand_over(None)
            else:
                waiter.cancel()
            raise

    def _hand_over(self, connection: Any) -> bool:
        """Give `connection` (or, with None, the room to make one) to the first caller still
        waiting; False when nobody is."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def _discard(self, connection: Any) -> None:
        """Forget a connection and cut it off at once (it may be mid-statement)."""
        if not connection.is_closed():
            connection.terminate()
        self._forget(connection)

    def _forget(self, connection: Any) -> None:
        """The connection no longer counts: its room goes to the first caller waiting."""
        self._size -= 1
        self._hand_over(None)


# Closes under way (a task nobody awaits must be referenced until it ends).
_CLOSING: set[asyncio.Task[None]] = set()


def _close_later(connection: Any) -> None:
    """Close in the background: a connection whose statement was cancelled first sees the server
    cancel it (asyncpg sent the request), so no statement runs on after its caller went."""
    if connection.is_closed():
        return
    task = asyncio.get_running_loop().create_task(_close(connection))
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)


async def _close(connection: Any) -> None:
    """Close politely (the server logs no broken connection), or cut it off if it does not answer."""
    if connection.is_closed():
        return
    try:
        await connection.close(timeout=2)
    except Exception:
        connection.terminate()


def _loop_time(deadline: float) -> float:
    """A `time.monotonic()` deadline on the running loop's clock."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())

"""Daily counters: one atomic check-and-increment per call, in Redis or in the database.

Both implementations are exact under concurrency and across processes: Redis runs the check and the
INCR in one Lua script; the database does it in one `INSERT ... ON CONFLICT DO UPDATE ... WHERE`
statement, in its own short transaction (so a counter row is never locked for a whole request).
Redis's counts are also written to the database's counters, a moment later, so that a Redis
restart never hands out a day's calls again (see `RedisCounter`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import anyio
import structlog
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Connection, Table, bindparam, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from tenantry.db.models import ApiCallCounter
from tenantry.db.prepared import PreparedSelect
from tenantry.db.reads import Reads
from tenantry.db.session import Database
from tenantry.errors import MeterUnavailable
from tenantry.loops import PerLoop
from tenantry.meter.resp import RespClient
from tenantry.metrics import METER_REFUSALS

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Hit:
    allowed: bool
    count: int  # calls counted for the day, this one included when allowed


class UsageCounter(Protocol):
    def hit(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        """Count one call unless `limit` calls were already counted for (scope, day)."""
        ...

    def counts(self, scopes: Sequence[str], day: str, reader: Connection | None = None) -> dict[str, int]:
        """The day's counts of many scopes, in one round trip (on `reader`, when the counts are in
        the database and the caller already holds a reader connection)."""
        ...

    async def hit_async(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        """`hit` from the event loop: the loop never waits on a socket or a lock."""
        ...

    async def counts_async(self, scopes: Sequence[str], day: str, reads: Reads) -> dict[str, int]:
        """`counts` from the event loop (the database's counts read on `reads`)."""
        ...

    async def aclose(self) -> None:
        """Close the running event loop's connections (at the end of the app's lifespan)."""
        ...

    def close(self) -> None:
        """Write what is still held in memory (at shutdown)."""
        ...


# Check and increment in one step: two processes can never both take the last call. A counter
# that is missing (the day's first call here, or Redis lost it) is never counted from zero: the
# script says so, with when this Redis began counting (its "epoch", kept in KEYS[2]) and how long
# ago that was; the caller reads the count kept in the database and calls again with it, and the
# counter is restored only if it is still missing, so two processes restoring at once cannot add
# their counts together.
_HIT_SCRIPT = """
local count = redis.call('GET', KEYS[1])
if not count then
  if ARGV[3] == '' then
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    local epoch = redis.call('GET', KEYS[2])
    if not epoch then
      epoch = tostring(now)
      redis.call('SET', KEYS[2], epoch)
    end
    return {-1, tostring(now - tonumber(epoch)), epoch}
  end
  count = tonumber(ARGV[3])
  redis.call('SET', KEYS[1], count, 'EX', tonumber(ARGV[2]))
else
  count = tonumber(count)
end
if count >= tonumber(ARGV[1]) then
  return {0, count}
end
return {1, redis.call('INCR', KEYS[1])}
"""
_MISSING = -1
_WINDOW_REFUSED = -2


@dataclass(frozen=True)
class Window:
    """A check that must pass before a call is counted (the burst limit's moving window): its
    Lua script (which returns true to let the call through), its one key and its arguments."""

    script: str
    key: str
    args: tuple[Any, ...]


@functools.cache
def _after_window(window_script: str, arguments: int) -> str:
    """One script that runs the window's check, then, only when it passes, `_HIT_SCRIPT`: a metered
    call with a burst limit costs one round trip to Redis, not two. KEYS: the window's, the day's
    count, the epoch; ARGV: the window's `arguments`, then the hit's three."""
    window_args = ", ".join(f"ARGV[{i}]" for i in range(1, arguments + 1))
    hit_args = ", ".join(f"ARGV[{arguments + i}]" for i in range(1, 4))
    return (
        f"local function window(KEYS, ARGV)\n{window_script}\nend\n"
        f"if not window({{KEYS[1]}}, {{{window_args}}}) then\n  return {{{_WINDOW_REFUSED}}}\nend\n"
        f"local function hit(KEYS, ARGV)\n{_HIT_SCRIPT}\nend\n"
        f"return hit({{KEYS[2], KEYS[3]}}, {{{hit_args}}})\n"
    )


# Longer than any meter day, even the first after a change of timezone (up to 50 hours).
_LONGEST_DAY_SECONDS = 3 * 86_400
# A read that finds no epoch (a Redis that has counted nothing yet) starts it, as the first call
# would: the time a Redis has been counting is then known to readers too (see `_SettledCounts`).
_START_EPOCH_SCRIPT = """
if not redis.call('GET', KEYS[1]) then
  local t = redis.call('TIME')
  redis.call('SET', KEYS[1], tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000))
end
return 0
"""

# A counter is never behind the database: Redis may have lost calls that the database has (an
# append-only file written once a second loses up to a second on a crash; a process may write
# what it counted before a restart late). Raising a counter to the database's total never counts a
# call twice: the database holds only calls that were counted and let through.
_CATCH_UP_SCRIPT = """
for i, key in ipairs(KEYS) do
  local count = redis.call('GET', key)
  if count and tonumber(count) < tonumber(ARGV[i]) then
    redis.call('SET', key, ARGV[i], 'KEEPTTL')
  end
end
return 0
"""

UNAVAILABLE = "The API-call meter cannot be reached, so no call is accepted. Try again shortly."
CATCHING_UP = (
    "The API-call meter is gathering today's counts after a restart, so no call is accepted. "
    "Try again in a moment."
)


def meter_unavailable(exc: Exception) -> MeterUnavailable:
    """Fail closed: a call that cannot be counted is refused (and logged), never let through."""
    log.error("api-call meter unavailable", error=str(exc))
    METER_REFUSALS.labels(reason="unavailable").inc()
    return MeterUnavailable(UNAVAILABLE, headers={"Retry-After": "5"})


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class WriteBehind:
    """Calls counted in Redis, added to the database's counters a moment later by a thread.

    Every process keeps what it counted since its last write (a few integers) and adds them to the
    database every `interval` seconds, in one transaction; `flush` writes at once (when a count
    reaches its limit, and before a restore). A write that fails is kept and tried again.
    """

    def __init__(
        self,
        store: DatabaseCounter,
        interval: float,
        written: Callable[[Mapping[tuple[str, str], int]], None] | None = None,
    ) -> None:
        self._store = store
        self.interval = interval
        self._written = written
        self._pending: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, scope: str, day: str) -> None:
        with self._lock:
            self._pending[(scope, day)] = self._pending.get((scope, day), 0) + 1
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="tenantry-meter-flush", daemon=True)
                self._thread.start()

    def flush(self, only: tuple[str, str] | None = None) -> None:
        """Write the counts not yet written (or those of one counter) to the database."""
        with self._lock:
            if only is None:
                batch, self._pending = self._pending, {}
            else:
                batch = {only: n} if (n := self._pending.pop(only, 0)) else {}
        if not batch:
            return
        try:
            totals = self._store.add(batch)
        except BaseException:
            with self._lock:
                for key, n in batch.items():
                    self._pending[key] = self._pending.get(key, 0) + n
            raise
        if self._written is not None:
            self._written(totals)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:  # the database is down: keep the counts, try again
                log.warning("api-call counts not written to the database yet", error=str(exc))

    def close(self) -> None:
        """Stop the thread and write what is left (at shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
        try:
            self.flush()
        except Exception as exc:  # Redis still has them; only a Redis restart as well would lose them
            log.error("api-call counts not written to the database at shutdown", error=str(exc))


class _SettledCounts:
    """The database's counts of the scopes Redis has no counter for, kept per Redis epoch.

    A scope missing from Redis has made no call since this Redis began counting (its first call
    would have restored the counter), so its count for the day is what the database held before
    that: calls counted by an earlier Redis. Once every process has written those (`settle_seconds`
    after the epoch began), that count no longer changes while the epoch lasts, and reading it
    again from the database for every view of the client only costs a round trip. Until then, and
    when Redis has no epoch at all, nothing is kept. A new epoch (Redis restarted) is another key.
    """

    LIMIT = 20_000  # (scope, day) pairs kept; all are dropped when more are asked for

    def __init__(self, settle_seconds: float) -> None:
        self.settle_seconds = settle_seconds
        self._counts: dict[tuple[str, str, str], int] = {}

    def known(self, missing: list[str], day: str, epoch: Any) -> tuple[dict[str, int], list[str]]:
        """The counts kept for `missing` under this epoch, and the scopes still to be read."""
        if epoch is None:
            return {}, missing
        tag = _text(epoch)
        kept = {s: n for s in missing if (n := self._counts.get((s, day, tag))) is not None}
        return kept, [s for s in missing if s not in kept]

    def keep(self, read: Mapping[str, int], asked: Sequence[str], day: str, epoch: Any) -> None:
        """Keep what the database gave for `asked` (0 where it has no row), once the epoch settled."""
        if epoch is None or time.time() - float(epoch) < self.settle_seconds:
            return
        if len(self._counts) + len(asked) > self.LIMIT:
            self._counts.clear()
        tag = _text(epoch)
        for scope in asked:
            self._counts[(scope, day, tag)] = read.get(scope, 0)


class RedisCounter:
    """The day's counters in Redis, kept in the database too, so a Redis restart forgets nothing.

    Redis counts every call (one script: exact across processes); each process adds what it
    counted to the database's counters within `flush_seconds` (`WriteBehind`), at once when a
    count reaches its limit. A counter Redis does not have is restored from the database before
    anything is counted. Right after Redis (re)started, a counter that lived in an earlier Redis
    is restored only once every process has had the time to write what it counted before the
    restart (twice the write interval, and a half second); until then its calls are refused with
    503. A counter started since (by another process, a moment ago) is restored at once.
    """

    def __init__(
        self,
        client: Redis,
        store: DatabaseCounter,
        flush_seconds: float = 1.0,
        prefix: str = "tenantry:calls:",
        url: str | None = None,
    ) -> None:
        self._client = client
        self._url = url
        # The event loop's own clients (meter.resp), one per loop: a connection belongs to one.
        self._async: PerLoop[RespClient] = PerLoop()
        self._prefix = prefix
        self._epoch_key = f"{prefix}epoch"
        self._script = client.register_script(_HIT_SCRIPT)
        self._catch_up_script = client.register_script(_CATCH_UP_SCRIPT)
        self._start_epoch_script = client.register_script(_START_EPOCH_SCRIPT)
        self._store = store
        self.written = WriteBehind(store, flush_seconds, self._catch_up)
        self.settle_seconds = 2 * flush_seconds + 0.5
        self._settled = _SettledCounts(self.settle_seconds)

    @classmethod
    def from_url(cls, url: str, database: Database, flush_seconds: float = 1.0) -> RedisCounter:
        client = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(client, DatabaseCounter(database), flush_seconds, url=url)

    def loop_client(self) -> RespClient:
        """This event loop's Redis connection (`meter.resp`), which others may share."""
        return self._loop_client()

    def _loop_client(self) -> RespClient:
        found = self._async.get()
        if found is None:
            url = self._url
            if url is None:
                raise RuntimeError("a RedisCounter made without a URL counts only from threads")
            found = self._async.get_or_make(lambda: RespClient(url, timeout=2))
        return found

    async def hit_async(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        if self._url is None:
            return await anyio.to_thread.run_sync(self.hit, scope, day, limit, ttl_seconds)
        client = self._loop_client()
        keys = [self._key(scope, day), self._epoch_key]
        try:
            result = await client.run_script(_HIT_SCRIPT, keys, [limit, ttl_seconds, ""])
            result = await self._restore_if_missing(client, result, scope, day, limit, ttl_seconds)
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        return await self._counted(scope, day, limit, bool(result[0]), int(result[1]))

    def counts_after(self, url: str | None) -> bool:
        """Whether `hit_after_window_async` can run the windows of the Redis at `url`: this one."""
        return self._url is not None and self._url == url

    async def hit_after_window_async(
        self, window: Window, scope: str, day: str, limit: int, ttl_seconds: int
    ) -> Hit | None:
        """`hit_async` behind a window's check, in one script: None when the window refused the
        call (nothing counted), else the hit."""
        client = self._loop_client()
        keys = [window.key, self._key(scope, day), self._epoch_key]
        script = _after_window(window.script, len(window.args))
        try:
            result = await client.run_script(script, keys, [*window.args, limit, ttl_seconds, ""])
            if int(result[0]) == _WINDOW_REFUSED:
                return None
            # The window let the call through (and counted it); only the hit is run again.
            result = await self._restore_if_missing(client, result, scope, day, limit, ttl_seconds)
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        return await self._counted(scope, day, limit, bool(result[0]), int(result[1]))

    async def _restore_if_missing(
        self, client: RespClient, result: Any, scope: str, day: str, limit: int, ttl_seconds: int
    ) -> Any:
        if int(result[0]) != _MISSING:
            return result
        # Rare (the day's first call, or a Redis restart): the database decides, on a thread.
        restored = await anyio.to_thread.run_sync(
            self._restored_count, scope, day, float(result[1]), _text(result[2])
        )
        keys = [self._key(scope, day), self._epoch_key]
        return await client.run_script(_HIT_SCRIPT, keys, [limit, ttl_seconds, restored])

    async def _counted(self, scope: str, day: str, limit: int, allowed: bool, count: int) -> Hit:
        if allowed:
            self.written.add(scope, day)
        if count >= limit:
            await anyio.to_thread.run_sync(self._write_through, scope, day)
        return Hit(allowed, count)

    def _write_through(self, scope: str, day: str) -> None:
        # The limit is reached: written through at once, so no restart can hand these back.
        try:
            self.written.flush((scope, day))
        except SQLAlchemyError as exc:
            log.warning("api-call count not written to the database yet", error=str(exc))

    async def counts_async(self, scopes: Sequence[str], day: str, reads: Reads) -> dict[str, int]:
        if not scopes:
            return {}
        if self._url is None:
            return await anyio.to_thread.run_sync(self.counts, scopes, day)
        client = self._loop_client()
        try:
            keys = [self._key(scope, day) for scope in scopes]
            *values, epoch = await client.execute("MGET", *keys, self._epoch_key)
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        found, missing = self._found(scopes, values, epoch)
        if missing:
            kept, unknown = self._settled.known(missing, day, epoch)
            found.update(kept)
            if unknown:
                if epoch is None:
                    await self._start_epoch_async(client)
                read = await self._store.counts_async(unknown, day, reads)
                self._settled.keep(read, unknown, day, epoch)
                found.update(read)
        return found

    async def _start_epoch_async(self, client: RespClient) -> None:
        try:
            await client.run_script(_START_EPOCH_SCRIPT, [self._epoch_key], [])
        except RedisError as exc:
            raise meter_unavailable(exc) from exc

    def _key(self, scope: str, day: str) -> str:
        return f"{self._prefix}{scope}:{day}"

    def hit(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        keys = [self._key(scope, day), self._epoch_key]
        try:
            result = self._script(keys=keys, args=[limit, ttl_seconds, ""])
            if int(result[0]) == _MISSING:
                restored = self._restored_count(scope, day, age=float(result[1]), epoch=_text(result[2]))
                result = self._script(keys=keys, args=[limit, ttl_seconds, restored])
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        allowed, count = bool(result[0]), int(result[1])
        if allowed:
            self.written.add(scope, day)
        if count >= limit:
            self._write_through(scope, day)
        return Hit(allowed, count)

    def _restored_count(self, scope: str, day: str, age: float, epoch: str) -> int:
        """The count to restore a missing counter to: what the database holds for the day.

        `epoch` names this Redis's run (when it began counting) and `age` is how long ago that was.
        """
        try:
            self.written.flush()  # this process's own counts first
            known, started_in = self._store.start_day(scope, day, epoch)
        except SQLAlchemyError as exc:
            raise meter_unavailable(exc) from exc
        if known is not None and started_in != epoch and age < self.settle_seconds:
            # The counter was counted before this Redis began (it restarted without persistence):
            # other processes may still be writing what they counted then, so wait for them.
            METER_REFUSALS.labels(reason="unavailable").inc()
            log.warning("api-call meter waiting for counts after a Redis restart", scope=scope)
            retry = max(1, math.ceil(self.settle_seconds - age))
            raise MeterUnavailable(CATCHING_UP, headers={"Retry-After": str(retry)})
        return known or 0

    def _catch_up(self, totals: Mapping[tuple[str, str], int]) -> None:
        """Raise any counter that is behind what the database holds (see `_CATCH_UP_SCRIPT`)."""
        keys = sorted(totals)
        try:
            self._catch_up_script(keys=[self._key(*key) for key in keys], args=[totals[key] for key in keys])
        except RedisError as exc:
            log.warning("api-call counters not compared with the database", error=str(exc))

    def counts(self, scopes: Sequence[str], day: str, reader: Connection | None = None) -> dict[str, int]:
        if not scopes:
            return {}
        try:
            *values, epoch = self._client.mget([*(self._key(s, day) for s in scopes), self._epoch_key])
        except RedisError as exc:
            raise meter_unavailable(exc) from exc
        found, missing = self._found(scopes, values, epoch)
        if missing:
            kept, unknown = self._settled.known(missing, day, epoch)
            found.update(kept)
            if unknown:
                if epoch is None:
                    try:
                        self._start_epoch_script(keys=[self._epoch_key])
                    except RedisError as exc:
                        raise meter_unavailable(exc) from exc
                read = self._store.counts(unknown, day, reader)
                self._settled.keep(read, unknown, day, epoch)
                found.update(read)
        return found

    @staticmethod
    def _found(scopes: Sequence[str], values: list[Any], epoch: Any) -> tuple[dict[str, int], list[str]]:
        """The counts Redis has, and the scopes whose count the database must give: a scope Redis
        has no counter for has made no call today, or Redis lost it when it restarted, and if that
        may have been today, the database has the count."""
        found = {s: int(v) for s, v in zip(scopes, values, strict=True) if v is not None}
        missing = [s for s in scopes if s not in found]
        if missing and (epoch is None or time.time() - float(epoch) < _LONGEST_DAY_SECONDS):
            return found, missing
        return found, []

    async def aclose(self) -> None:
        """Close the running loop's connections (at the end of the app's lifespan)."""
        found = self._async.pop()
        if found is not None:
            await found.aclose()

    def close(self) -> None:
        try:
            self.written.close()
        finally:
            self._client.close()


_COUNTS = select(ApiCallCounter.scope, ApiCallCounter.count).where(
    ApiCallCounter.day == bindparam("day"), ApiCallCounter.scope.in_(bindparam("scopes", expanding=True))
)
# One scope (a client's own view, on every GET of it): an equality lookup, prepared.
_COUNT_ONE = PreparedSelect(
    select(ApiCallCounter.count).where(
        ApiCallCounter.day == bindparam("day"), ApiCallCounter.scope == bindparam("scope")
    )
)


# The same count as `DatabaseCounter.hit_many`'s statement, as SQLite's SQL for the loop's own
# connection (a driver call, not SQLAlchemy's execution: this runs on every metered call).
_SQLITE_HIT = (
    "INSERT INTO api_call_counters (scope, day, count) VALUES (?, ?, 1) "
    "ON CONFLICT (scope, day) DO UPDATE SET count = api_call_counters.count + 1 "
    "WHERE api_call_counters.count < ? RETURNING count"
)
_SQLITE_FORGET = "DELETE FROM api_call_counters WHERE scope = ? AND day < ?"


class _GroupWriter:
    """Counts the event loop's calls on one thread of its own. Calls that arrive while a transaction
    is being written wait for the next one, and share it: under load, one commit counts many calls
    (each still allowed or refused exactly, in order), instead of a thread and a transaction each."""

    def __init__(self, counter: DatabaseCounter) -> None:
        self._counter = counter
        self._pending: list[tuple[tuple[str, str, int], asyncio.Future[Hit], asyncio.AbstractEventLoop]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    async def hit(self, scope: str, day: str, limit: int) -> Hit:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Hit] = loop.create_future()
        with self._lock:
            self._pending.append(((scope, day, limit), future, loop))
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="tenantry-meter-writer", daemon=True)
                self._thread.start()
        self._wake.set()
        return await future

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                batch, self._pending = self._pending, []
                self._wake.clear()
                if not batch and self._stopping:
                    self._thread = None
                    return
            if not batch:
                continue
            outcome: list[Hit] | BaseException
            try:
                outcome = self._counter.hit_many([call for call, _, _ in batch])
            except BaseException as exc:  # every call of the batch gets the database's refusal
                outcome = exc
            for index, (_, future, loop) in enumerate(batch):
                result = outcome if isinstance(outcome, BaseException) else outcome[index]
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
                    loop.call_soon_threadsafe(_settle, future, result)

    def stop(self) -> None:
        """Let the thread end once nothing is pending (it starts again when a call comes)."""
        with self._lock:
            self._stopping = True
        self._wake.set()


# A call counted at the end of its step of the loop: (scope, day, limit), and where its count goes.
_StepCall = tuple[tuple[str, str, int], "asyncio.Future[Hit | None]"]


def _settle(future: asyncio.Future[Hit], result: Hit | BaseException) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class DatabaseCounter:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._insert = sqlite.insert if database.is_sqlite else postgresql.insert
        self._writer = _GroupWriter(self)
        # SQLite: the event loop's own connection for counting (see `hit_async`), one per loop.
        self._loop_connections: dict[int, sqlite3.Connection] = {}
        # SQLite: the calls made in the current step of each loop, counted together at its end.
        self._loop_steps: dict[asyncio.AbstractEventLoop, list[_StepCall]] = {}

    def hit(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        return self.hit_many([(scope, day, limit)])[0]

    def hit_many(self, hits: Sequence[tuple[str, str, int]]) -> list[Hit]:
        """Count calls (scope, day, limit) one after the other, in one transaction: each is allowed
        or refused exactly as if it came alone."""
        table = cast(Table, ApiCallCounter.__table__)
        results = []
        with self._database.session(write=True) as session:
            for scope, day, limit in hits:
                statement = (
                    self._insert(table)
                    .values(scope=scope, day=day, count=1)
                    .on_conflict_do_update(
                        index_elements=[table.c.scope, table.c.day],
                        set_={"count": table.c.count + 1},
                        where=table.c.count < limit,
                    )
                    .returning(table.c.count)
                )
                count = session.execute(statement).scalar_one_or_none()
                if count == 1:
                    # The scope's first call of the day: its earlier days are of no more use.
                    session.execute(
                        delete(ApiCallCounter).where(ApiCallCounter.scope == scope, ApiCallCounter.day < day)
                    )
                # No row back: the WHERE refused the update, the day's calls are used up.
                results.append(Hit(False, limit) if count is None else Hit(True, int(count)))
            session.commit()
        return results

    def add(self, counts: Mapping[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """Add calls counted elsewhere (in Redis) to the day's counters, in one transaction; return
        the counters' totals."""
        table = cast(Table, ApiCallCounter.__table__)
        statement = self._insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.day],
            set_={"count": table.c.count + statement.excluded.count},
        )
        # In key order, so that two processes writing the same counters never deadlock.
        rows = [{"scope": scope, "day": day, "count": n} for (scope, day), n in sorted(counts.items())]
        totals = select(table.c.scope, table.c.day, table.c.count).where(
            tuple_(table.c.scope, table.c.day).in_(list(counts))
        )
        with self._database.session(write=True) as session:
            session.execute(statement, rows)
            written = {(scope, day): int(count) for scope, day, count in session.execute(totals)}
            session.commit()
        return written

    def start_day(self, scope: str, day: str, epoch: str) -> tuple[int | None, str | None]:
        """The count kept for (scope, day) and the Redis epoch its row was started in, or
        (None, epoch) when there is none yet: then a row is started at 0 in `epoch` (so that a
        later restore knows whether the counter lived in an earlier Redis), and the scope's earlier
        days go."""
        table = cast(Table, ApiCallCounter.__table__)
        with self._database.session(write=True) as session:
            row = session.execute(
                select(ApiCallCounter.count, ApiCallCounter.epoch).where(
                    ApiCallCounter.scope == scope, ApiCallCounter.day == day
                )
            ).one_or_none()
            if row is None:
                session.execute(
                    self._insert(table)
                    .values(scope=scope, day=day, count=0, epoch=epoch)
                    .on_conflict_do_nothing()
                )
                session.execute(
                    delete(ApiCallCounter).where(ApiCallCounter.scope == scope, ApiCallCounter.day < day)
                )
            session.commit()
        if row is None:
            return None, epoch
        count, started_in = row
        return int(count), started_in

    async def hit_async(self, scope: str, day: str, limit: int, ttl_seconds: int) -> Hit:
        # SQLite: first on the event loop's own connection, if the write lock is free at once (a
        # local write of microseconds; it never waits), together with the calls made in the same
        # step of the loop (one transaction for them all). Otherwise, or on PostgreSQL, on the
        # counter's own thread, where it may wait its turn and where the calls that arrive
        # meanwhile share one transaction (see `_GroupWriter`).
        if self._database.is_sqlite:
            hit = await self._hit_now(scope, day, limit)
            if hit is not None:
                return hit
        return await self._writer.hit(scope, day, limit)

    def _hit_now(self, scope: str, day: str, limit: int) -> asyncio.Future[Hit | None]:
        """The count on the loop's SQLite connection, made at the end of this step of the loop with
        the other calls made in it; None when another writer holds the lock."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Hit | None] = loop.create_future()
        step = self._loop_steps.get(loop)
        if step is None:
            step = self._loop_steps[loop] = []
            loop.call_soon(self._count_step, loop)
        step.append(((scope, day, limit), future))
        return future

    def _count_step(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count the calls made in one step of the loop, in order, in one transaction: each is
        allowed or refused exactly as if it came alone. A caller gone meanwhile is not counted."""
        step = [(call, future) for call, future in self._loop_steps.pop(loop, ()) if not future.done()]
        if not step:
            return
        try:
            hits = self._count_now(loop, [call for call, _ in step])
        except Exception as exc:  # every call of the step gets the database's refusal
            for _, future in step:
                future.set_exception(exc)
            return
        for index, (_, future) in enumerate(step):
            # None: the lock is taken, and the writer thread waits for it instead.
            future.set_result(None if hits is None else hits[index])

    def _count_now(
        self, loop: asyncio.AbstractEventLoop, calls: list[tuple[str, str, int]]
    ) -> list[Hit] | None:
        """`calls` counted in one transaction on the loop's connection, or None if another writer
        holds the lock (this never waits for it)."""
        connection = self._loop_connection(loop)
        try:
            connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return None
        hits: list[Hit] = []
        try:
            for scope, day, limit in calls:
                row = connection.execute(_SQLITE_HIT, (scope, day, limit)).fetchone()
                if row is not None and row[0] == 1:
                    connection.execute(_SQLITE_FORGET, (scope, day))
                hits.append(Hit(False, limit) if row is None else Hit(True, int(row[0])))
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise
        return hits

    def _loop_connection(self, loop: asyncio.AbstractEventLoop) -> sqlite3.Connection:
        connection = self._loop_connections.get(id(loop))
        if connection is None:
            fairy = self._database.engine.raw_connection()
            connection = cast(sqlite3.Connection, fairy.driver_connection)
            fairy.detach()
            connection.execute("PRAGMA busy_timeout=0")  # never wait: the loop must not block
            self._loop_connections[id(loop)] = connection
        return connection

    async def counts_async(self, scopes: Sequence[str], day: str, reads: Reads) -> dict[str, int]:
        if len(scopes) == 1:  # a client's own view: one prepared lookup, on the loop's reads
            found = await reads.run(_COUNT_ONE, day=day, scope=scopes[0])
            return {scopes[0]: int(found[0].count)} if found else {}
        return await anyio.to_thread.run_sync(self.counts, scopes, day)

    async def aclose(self) -> None:
        self._writer.stop()
        connection = self._loop_connections.pop(id(asyncio.get_running_loop()), None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        pass  # nothing is held in memory: every call is counted in the database at once

    def counts(self, scopes: Sequence[str], day: str, reader: Connection | None = None) -> dict[str, int]:
        if not scopes:
            return {}
        if reader is None:
            with self._database.reader() as connection:
                return self.counts(scopes, day, connection)
        # A statement built once: this runs for every client shown.
        if len(scopes) == 1:
            found = _COUNT_ONE.run(reader, day=day, scope=scopes[0])
            return {scopes[0]: int(found[0].count)} if found else {}
        rows = reader.execute(_COUNTS, {"day": day, "scopes": list(scopes)}).all()
        return {scope: int(count) for scope, count in rows}

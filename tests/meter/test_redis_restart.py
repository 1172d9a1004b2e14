"""A restart of Redis (without persistence) never hands out a day's calls again.

Each test runs its own `redis-server` on a free port and restarts it; the counts are kept in the
test's database (SQLite, or PostgreSQL when the suite runs on it).
"""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import select

from tenantry.app import create_app
from tenantry.db.models import ApiCallCounter
from tenantry.meter.counters import DatabaseCounter, Hit, RedisCounter
from tests.factories import client_with_user

DAY = "2026-03-10"
TTL = 3600


def answer_after_restart(http, path: str, headers, patience: float = 10.0):
    """Call; while the meter is gathering the counts (503), wait and call again."""
    deadline = time.monotonic() + patience
    while True:
        response = http.get(path, headers=headers)
        if response.status_code != 503:
            return response
        assert response.json()["code"] == "meter_unavailable"
        assert time.monotonic() < deadline, "the meter never came back"
        time.sleep(int(response.headers["Retry-After"]) / 4)


def statuses_after_restart(http, headers, calls: int) -> list[int]:
    return [answer_after_restart(http, "/api/1/me", headers).status_code for _ in range(calls)]


def stored_count(database, scope: str, day: str) -> int | None:
    with database.session() as session:
        return session.scalar(
            select(ApiCallCounter.count).where(ApiCallCounter.scope == scope, ApiCallCounter.day == day)
        )


def wait_for_count(database, scope: str, expected: int) -> None:
    deadline = time.monotonic() + 5
    while stored_count(database, scope, DAY) != expected:
        assert time.monotonic() < deadline, f"the database never held {expected} calls"
        time.sleep(0.05)


class TestOverHttp:
    def test_a_client_that_used_its_calls_gets_none_back_after_a_restart(
        self, settings, clock, database, make_partner, redis_server
    ):
        app = create_app(
            settings.model_copy(update={"redis_url": redis_server.url, "meter_flush_seconds": 0.2}),
            clock=clock,
            database=database,
        )
        with TestClient(app) as http:
            partner = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
            client_id, _, key = client_with_user(
                http, partner, clock, "active", "a@client.test", api_calls_per_day=5
            )
            assert [http.get("/api/1/me", headers=key).status_code for _ in range(6)] == [200] * 5 + [429]
            redis_server.restart()
            # Before the client calls again, its calls today are read from the database.
            shown = answer_after_restart(http, f"/api/1/clients/{client_id}", partner.headers)
            assert shown.json()["usage"]["api_calls_today"] == 5
            assert statuses_after_restart(http, key, 5) == [429] * 5

    def test_calls_not_yet_written_to_the_database_are_not_forgotten_either(
        self, settings, clock, database, make_partner, redis_server
    ):
        app = create_app(
            settings.model_copy(update={"redis_url": redis_server.url, "meter_flush_seconds": 0.2}),
            clock=clock,
            database=database,
        )
        with TestClient(app) as http:
            partner = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
            _, _, key = client_with_user(http, partner, clock, "active", "a@client.test", api_calls_per_day=5)
            assert [http.get("/api/1/me", headers=key).status_code for _ in range(3)] == [200] * 3
            redis_server.restart()  # at once: the counts may well be in memory only
            assert statuses_after_restart(http, key, 4) == [200, 200, 429, 429]


class TestTheCounter:
    def test_each_count_reaches_the_database_within_the_write_interval(self, database, redis_server):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        for _ in range(3):
            assert counter.hit("client:1", DAY, 10, TTL).allowed
        wait_for_count(database, "client:1", 3)
        counter.close()

    def test_the_call_that_reaches_the_limit_is_written_through_at_once(self, database, redis_server):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=60)
        assert [counter.hit("client:1", DAY, 3, TTL).allowed for _ in range(3)] == [True] * 3
        assert stored_count(database, "client:1", DAY) == 3
        counter.close()

    def test_a_counter_that_lost_its_last_calls_is_raised_back_to_the_databases_count(
        self, database, redis_server
    ):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        assert [counter.hit("client:1", DAY, 10, TTL).allowed for _ in range(5)] == [True] * 5
        wait_for_count(database, "client:1", 5)
        # What a crash can leave of an append-only file written once a second: the last calls lost.
        with Redis.from_url(redis_server.url) as redis:
            redis.set(f"tenantry:calls:client:1:{DAY}", 2, keepttl=True)
        assert counter.hit("client:1", DAY, 10, TTL).allowed
        wait_for_count(database, "client:1", 6)
        deadline = time.monotonic() + 5
        while counter.counts(["client:1"], DAY) != {"client:1": 6}:
            assert time.monotonic() < deadline, "the counter was never raised"
            time.sleep(0.05)
        assert [counter.hit("client:1", DAY, 10, TTL).allowed for _ in range(5)] == [True] * 4 + [False]
        counter.close()

    def test_counts_of_every_process_are_gathered_before_a_lost_counter_is_restored(
        self, database, redis_server
    ):
        # Two processes, each with its own counts in memory, count the same client.
        first = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.2)
        second = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.2)
        assert [c.hit("client:1", DAY, 6, TTL).allowed for c in (first, second, first, second)] == [True] * 4
        redis_server.restart()
        allowed = []
        deadline = time.monotonic() + 10
        while len(allowed) < 4:
            try:
                allowed.append(first.hit("client:1", DAY, 6, TTL).allowed)
            except Exception as refused:  # meter_unavailable while the counts are gathered
                assert getattr(refused, "code", None) == "meter_unavailable"
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert allowed == [True, True, False, False]
        first.close()
        second.close()

    def test_a_counter_another_process_is_starting_right_now_is_not_kept_waiting(
        self, database, redis_server
    ):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        assert counter.hit("client:2", DAY, 10, TTL).allowed  # this Redis begins counting
        with Redis.from_url(redis_server.url) as redis:
            epoch = redis.get("tenantry:calls:epoch").decode()
        # Another process has just started client 1's day in the database, and not yet in Redis.
        DatabaseCounter(database).start_day("client:1", DAY, epoch)
        assert counter.hit("client:1", DAY, 10, TTL) == Hit(True, 1)
        counter.close()

    def test_processes_restoring_one_counter_at_once_never_add_their_counts_together(
        self, database, redis_server
    ):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        assert [counter.hit("client:1", DAY, 100, TTL).allowed for _ in range(40)] == [True] * 40
        counter.close()
        assert stored_count(database, "client:1", DAY) == 40
        redis_server.restart()
        processes = [RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1) for _ in range(8)]
        # Another client's first call of the day starts the new Redis's clock; once every process
        # has had the time to write its counts, lost counters are restored.
        processes[0].hit("client:2", DAY, 100, TTL)
        time.sleep(processes[0].settle_seconds)
        start = threading.Barrier(len(processes))
        allowed = [0] * len(processes)

        def hammer(index: int) -> None:
            start.wait()
            for _ in range(20):
                allowed[index] += processes[index].hit("client:1", DAY, 100, TTL).allowed

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(len(processes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for process in processes:
            process.close()
        assert sum(allowed) == 60
        assert stored_count(database, "client:1", DAY) == 100


def store_count(database, scope: str, day: str, count: int) -> None:
    """What the database holds for `scope` on `day`: `count` calls (counted by an earlier Redis)."""
    with database.session(write=True) as session:
        row = session.get(ApiCallCounter, (scope, day))
        if row is None:
            session.add(ApiCallCounter(scope=scope, day=day, count=count, epoch="0"))
        else:
            row.count = count
        session.commit()


def with_a_settled_count(database, redis_server, count: int) -> RedisCounter:
    """A counter that read client 1's count (`count`, from the database) once its epoch settled:
    the count is kept from then on."""
    counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
    store_count(database, "client:1", DAY, count)
    counter.counts(["client:1"], DAY)  # begins the epoch
    time.sleep(counter.settle_seconds)
    assert counter.counts(["client:1"], DAY) == {"client:1": count}
    return counter


class TestTheCountsOfQuietClients:
    """A client that has made no call since Redis began counting has no counter there: its count
    for the day is what the database kept, read once the processes have written it, not on every
    view of the client. (The tests change the database's count behind the meter's back, which no
    process does, to see whether it was read again.)"""

    def test_a_settled_count_missing_from_redis_is_read_from_the_database_once(self, database, redis_server):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        assert counter.hit("client:2", DAY, 10, TTL).allowed  # this Redis begins counting
        store_count(database, "client:1", DAY, 4)
        time.sleep(counter.settle_seconds)
        assert counter.counts(["client:1", "client:2"], DAY) == {"client:1": 4, "client:2": 1}
        store_count(database, "client:1", DAY, 9)
        assert counter.counts(["client:1", "client:2"], DAY) == {"client:1": 4, "client:2": 1}
        assert counter.counts(["client:1"], DAY) == {"client:1": 4}
        counter.close()

    def test_nothing_is_kept_before_the_counts_of_every_process_are_written(self, database, redis_server):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=60)
        assert counter.hit("client:2", DAY, 10, TTL).allowed  # the epoch begins now
        assert counter.counts(["client:1"], DAY) == {}  # no row: no call today
        # Another process writes what it counted before Redis restarted.
        store_count(database, "client:1", DAY, 3)
        assert counter.counts(["client:1"], DAY) == {"client:1": 3}
        counter.close()

    def test_a_redis_that_never_counted_begins_its_epoch_when_read(self, database, redis_server):
        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        store_count(database, "client:1", DAY, 2)
        assert counter.counts(["client:1"], DAY) == {"client:1": 2}
        with Redis.from_url(redis_server.url) as redis:
            assert redis.get("tenantry:calls:epoch") is not None
        store_count(database, "client:1", DAY, 3)
        assert counter.counts(["client:1"], DAY) == {"client:1": 3}  # not settled: read again
        time.sleep(counter.settle_seconds)
        assert counter.counts(["client:1"], DAY) == {"client:1": 3}
        store_count(database, "client:1", DAY, 7)
        assert counter.counts(["client:1"], DAY) == {"client:1": 3}  # settled: kept
        counter.close()

    def test_a_count_kept_under_one_epoch_is_read_again_after_a_restart(self, database, redis_server):
        counter = with_a_settled_count(database, redis_server, 2)
        redis_server.restart()
        store_count(database, "client:1", DAY, 5)
        assert counter.counts(["client:1"], DAY) == {"client:1": 5}
        counter.close()

    def test_a_client_that_calls_again_is_counted_by_redis_not_by_what_was_kept(self, database, redis_server):
        counter = with_a_settled_count(database, redis_server, 2)
        assert counter.hit("client:1", DAY, 10, TTL) == Hit(True, 3)
        assert counter.counts(["client:1"], DAY) == {"client:1": 3}
        counter.close()

    def test_the_event_loops_reads_keep_the_settled_count_too(self, database, redis_server):
        import asyncio

        from tenantry.db.reads import DatabaseReads

        counter = RedisCounter.from_url(redis_server.url, database, flush_seconds=0.1)
        store_count(database, "client:1", DAY, 6)
        database_reads = DatabaseReads(database, max_size=2, timeout=5)

        async def view() -> dict[str, int]:
            async with database_reads.connection() as reads:
                return await counter.counts_async(["client:1"], DAY, reads)

        async def views() -> list[dict[str, int]]:
            try:
                first = await view()  # begins the epoch
                await asyncio.sleep(counter.settle_seconds)
                settled = await view()
                store_count(database, "client:1", DAY, 8)
                return [first, settled, await view()]
            finally:
                await counter.aclose()
                await database_reads.close()

        assert asyncio.run(views()) == [{"client:1": 6}] * 3
        counter.close()

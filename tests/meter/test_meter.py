"""The daily API-call meter and the burst limit (SPEC §8) over HTTP, and the counters themselves."""

from __future__ import annotations

import asyncio
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tenantry.api.deps import with_headers
from tenantry.app import create_app
from tenantry.db.models import Partner
from tenantry.meter.counters import DatabaseCounter, RedisCounter
from tests.conftest import REDIS_URL
from tests.factories import add_user, client_with_user, key_for, new_client

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="TENANTRY_TEST_REDIS_URL is not set")


RATE_LIMIT_HEADERS = (
    "RateLimit-Policy",
    "RateLimit",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)


def refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("tenantry_api_meter_refusals_total", {"reason": reason}) or 0.0


def metered_client(http, partner, clock, calls: int, status: str = "active"):
    client_id, _, headers = client_with_user(
        http, partner, clock, status, "a@client.test", api_calls_per_day=calls
    )
    return client_id, headers


class TestDailyLimit:
    def test_calls_are_counted_down_with_headers_and_refused_past_the_limit(self, http, partner, clock):
        _, headers = metered_client(http, partner, clock, 3)
        midnight = datetime(2026, 3, 11, tzinfo=UTC)
        reset_in = int((midnight - clock.now()).total_seconds())
        for remaining in (2, 1, 0):
            response = http.get("/api/1/me", headers=headers)
            assert response.status_code == 200
            assert response.headers["RateLimit-Policy"] == '"daily";q=3;w=86400'
            assert response.headers["RateLimit"] == f'"daily";r={remaining};t={reset_in}'
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert response.headers["X-RateLimit-Remaining"] == str(remaining)
            assert response.headers["X-RateLimit-Reset"] == str(int(midnight.timestamp()))
            assert all(len(response.headers.get_list(name)) == 1 for name in RATE_LIMIT_HEADERS)
        refused = http.get("/api/1/me", headers=headers)
        assert refused.status_code == 429
        assert refused.json()["code"] == "daily_api_limit_reached"
        assert refused.headers["Retry-After"] == str(reset_in)
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        # The refusal carries the headers too, each once (the error's and the meter's are one).
        assert [len(refused.headers.get_list(name)) for name in RATE_LIMIT_HEADERS] == [1] * 5

    def test_the_meter_s_headers_replace_any_of_the_same_name_the_answer_already_has(self):
        raw = [
            (b"content-type", b"application/json"),
            (b"x-ratelimit-remaining", b"7"),
            (b"ratelimit", b"old"),
        ]
        extra = {"RateLimit": '"daily";r=2;t=60', "X-RateLimit-Remaining": "2", "X-RateLimit-Limit": "3"}
        assert with_headers(raw, extra) == [
            (b"content-type", b"application/json"),
            (b"ratelimit", b'"daily";r=2;t=60'),
            (b"x-ratelimit-remaining", b"2"),
            (b"x-ratelimit-limit", b"3"),
        ]

    def test_each_refusal_is_counted_in_the_metrics(self, http, partner, clock):
        _, headers = metered_client(http, partner, clock, 0)
        before = refusals("daily_limit")
        assert http.get("/api/1/me", headers=headers).status_code == 429
        assert http.get("/api/1/me", headers=headers).status_code == 429
        assert refusals("daily_limit") == before + 2
        exposed = http.get("/metrics").text
        assert f'tenantry_api_meter_refusals_total{{reason="daily_limit"}} {before + 2}' in exposed

    def test_an_allocation_of_zero_refuses_every_call(self, http, partner, clock):
        _, headers = metered_client(http, partner, clock, 0)
        refused = http.get("/api/1/me", headers=headers)
        assert refused.status_code == 429
        assert refused.headers["RateLimit-Policy"] == '"daily";q=0;w=86400'

    def test_errors_after_metering_carry_the_headers_and_count(self, http, partner, clock):
        _, headers = metered_client(http, partner, clock, 5)
        missing = http.get("/api/1/clients/999999", headers=headers)
        assert missing.status_code == 404
        assert missing.headers["X-RateLimit-Remaining"] == "4"

    def test_the_day_is_the_partners_calendar_day(self, http, make_partner, clock, database):
        partner = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
        with database.session(write=True) as session:
            session.get(Partner, partner.id).timezone = "America/New_York"
            session.commit()
        _, headers = metered_client(http, partner, clock, 2)
        # 2026-03-10 12:00 UTC is 08:00 in New York; its day ends at 04:00 UTC on the 11th.
        assert [http.get("/api/1/me", headers=headers).status_code for _ in range(3)] == [200, 200, 429]
        clock.set(datetime(2026, 3, 11, 3, 59, 59, tzinfo=UTC))
        assert http.get("/api/1/me", headers=headers).status_code == 429
        clock.set(datetime(2026, 3, 11, 4, 0, tzinfo=UTC))
        fresh = http.get("/api/1/me", headers=headers)
        assert fresh.status_code == 200
        assert fresh.headers["X-RateLimit-Remaining"] == "1"

    def test_the_client_shows_todays_calls_in_its_usage_and_in_the_list(self, http, partner, clock):
        client_id, headers = metered_client(http, partner, clock, 10)
        other = new_client(http, partner, "trial")
        for _ in range(3):
            http.get("/api/1/me", headers=headers)
        one = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
        assert one["usage"]["api_calls_today"] == 3
        listed = {
            c["id"]: c["usage"]["api_calls_today"]
            for c in http.get("/api/1/clients", headers=partner.headers).json()["items"]
        }
        assert listed == {client_id: 3, other: 0}

    def test_a_client_key_refused_by_status_is_not_counted(self, http, partner, clock):
        client_id, headers = metered_client(http, partner, clock, 10, status="disabled")
        assert http.get("/api/1/me", headers=headers).status_code == 403
        usage = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()["usage"]
        assert usage["api_calls_today"] == 0


class TestPartnerKeys:
    def test_partner_keys_draw_on_what_the_plan_has_left_after_client_allocations(
        self, http, make_partner, clock
    ):
        partner = make_partner(api_calls_per_day=10, users=10, dashboards=10)
        new_client(http, partner, "trial", api_calls_per_day=7)
        counts = [http.get("/api/1/partner", headers=partner.headers) for _ in range(2)]
        assert counts[0].headers["RateLimit-Policy"] == '"daily";q=3;w=86400'
        assert counts[1].headers["X-RateLimit-Remaining"] == "0"
        assert http.get("/api/1/partner", headers=partner.headers).status_code == 429

    def test_an_unlimited_plan_is_not_metered(self, http, make_partner):
        partner = make_partner()
        response = http.get("/api/1/partner", headers=partner.headers)
        assert response.status_code == 200
        assert "RateLimit-Policy" not in response.headers


class TestBurst:
    def test_a_sixth_request_within_a_second_is_rate_limited(self, settings, clock, database, make_partner):
        app = create_app(
            settings.model_copy(update={"api_burst_per_second": 5}), clock=clock, database=database
        )
        with TestClient(app) as http:
            partner = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
            _, headers = metered_client(http, partner, clock, 100)
            before = refusals("burst")
            statuses = [http.get("/api/1/me", headers=headers).status_code for _ in range(6)]
            # Six requests are made well within one second; a pause here would only make it flaky.
            assert statuses[:5] == [200] * 5
            assert statuses[5] == 429
            refused = http.get("/api/1/me", headers=headers)
            assert refused.json()["code"] == "rate_limited"
            assert refused.headers["Retry-After"] == "1"
            assert refusals("burst") == before + 2
            assert http.get("/api/1/partner", headers=partner.headers).status_code == 200

    def test_calls_refused_for_the_burst_are_not_counted_for_the_day(
        self, settings, clock, database, make_partner
    ):
        app = create_app(
            settings.model_copy(update={"api_burst_per_second": 3}), clock=clock, database=database
        )
        with TestClient(app) as http:
            partner = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
            client_id, headers = metered_client(http, partner, clock, 100)
            answers = [http.get("/api/1/me", headers=headers) for _ in range(5)]
            assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
            assert [a.headers.get("X-RateLimit-Remaining") for a in answers[:3]] == ["99", "98", "97"]
            # A burst refusal carries the day's headers too, as every metered answer does.
            assert [a.headers.get("X-RateLimit-Remaining") for a in answers[3:]] == ["97", "97"]
            assert answers[4].headers["RateLimit-Policy"] == '"daily";q=100;w=86400'
            assert answers[4].headers["RateLimit"].startswith('"daily";r=97;t=')
            assert answers[4].headers["X-RateLimit-Limit"] == "100"
            client = http.get(f"/api/1/clients/{client_id}", headers=partner.headers).json()
            assert client["usage"]["api_calls_today"] == 3


class TestRedisDown:
    def test_an_unreachable_redis_refuses_metered_calls_with_503_and_never_lets_them_through(
        self, settings, clock, database, make_partner
    ):
        down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
        app = create_app(down, clock=clock, database=database)
        with TestClient(app) as http:
            metered = make_partner(users=10, dashboards=10, api_calls_per_day=1000)
            before = refusals("unavailable")
            refused = http.get("/api/1/partner", headers=metered.headers)
            assert refused.status_code == 503
            assert refusals("unavailable") == before + 1
            exposed = http.get("/metrics").text
            assert f'tenantry_api_meter_refusals_total{{reason="unavailable"}} {before + 1}' in exposed
            assert refused.json()["code"] == "meter_unavailable"
            assert refused.headers["Retry-After"] == "5"
            unlimited = make_partner()
            assert http.get("/api/1/partner", headers=unlimited.headers).status_code == 200
            client_id = new_client(http, unlimited, "active")
            user = add_user(http, unlimited, client_id, "a@client.test", password=None)
            client_key = key_for(http, unlimited, client_id, user["id"])
            refused = http.get("/api/1/me", headers=client_key)
            assert (refused.status_code, refused.json()["code"]) == (503, "meter_unavailable")


def hammer(counter, limit: int, attempts: int, workers: int = 8) -> int:
    with ThreadPoolExecutor(workers) as pool:
        hits = list(pool.map(lambda _: counter.hit("client:1", "2026-03-10", limit, 3600), range(attempts)))
    return sum(hit.allowed for hit in hits)


class TestCounters:
    def test_the_database_counter_is_exact_under_concurrency(self, database):
        assert hammer(DatabaseCounter(database), 50, 120) == 50
        assert DatabaseCounter(database).counts(["client:1", "client:2"], "2026-03-10") == {"client:1": 50}

    def test_calls_counted_from_the_event_loop_share_transactions_and_stay_exact(self, database):
        counter = DatabaseCounter(database)

        async def burst() -> list[bool]:
            hits = [counter.hit_async(f"client:{n % 2}", "2026-03-10", 20, 3600) for n in range(90)]
            return [hit.allowed for hit in await asyncio.gather(*hits)]

        allowed = asyncio.run(burst())
        assert sum(allowed) == 40  # 20 for each of the two clients, not one more
        assert counter.counts(["client:0", "client:1"], "2026-03-10") == {"client:0": 20, "client:1": 20}

    def test_on_sqlite_the_calls_of_one_step_of_the_loop_are_one_transaction(self, database):
        if not database.is_sqlite:
            pytest.skip("the event loop's own connection counts on SQLite only")
        counter = DatabaseCounter(database)
        statements: list[str] = []

        async def steps() -> tuple[list[int], list[int]]:
            counter._loop_connection(asyncio.get_running_loop()).set_trace_callback(statements.append)
            first = await asyncio.gather(
                *(counter.hit_async("client:1", "2026-03-10", 5, 3600) for _ in range(7))
            )
            second = await asyncio.gather(
                *(counter.hit_async("client:1", "2026-03-10", 9, 3600) for _ in range(3))
            )
            return [hit.count for hit in first], [hit.count for hit in second]

        first, second = asyncio.run(steps())
        # In order, each allowed or refused as if alone: 1..5, then two refusals at the limit.
        assert first == [1, 2, 3, 4, 5, 5, 5]
        assert second == [6, 7, 8]
        assert statements.count("COMMIT") == 2  # one per step of the loop, not one per call
        assert counter.counts(["client:1"], "2026-03-10") == {"client:1": 8}

    def test_a_call_whose_caller_left_before_the_end_of_the_step_is_not_counted(self, database):
        if not database.is_sqlite:
            pytest.skip("the event loop's own connection counts on SQLite only")
        counter = DatabaseCounter(database)

        async def one_left() -> list[int]:
            calls = [
                asyncio.ensure_future(counter.hit_async("client:1", "2026-03-10", 5, 3600)) for _ in range(3)
            ]
            await asyncio.sleep(0)  # each call has joined the step
            calls[1].cancel()
            done = await asyncio.gather(*calls, return_exceptions=True)
            return [hit.count for hit in done if not isinstance(hit, BaseException)]

        assert asyncio.run(one_left()) == [1, 2]
        assert counter.counts(["client:1"], "2026-03-10") == {"client:1": 2}

    def test_on_sqlite_a_fault_while_counting_a_step_fails_each_of_its_calls_and_holds_none_up(
        self, database
    ):
        if not database.is_sqlite:
            pytest.skip("the event loop's own connection counts on SQLite only")
        counter = DatabaseCounter(database)

        async def broken() -> list[BaseException | object]:
            connection = counter._loop_connection(asyncio.get_running_loop())
            connection.close()  # every statement on it now fails
            calls = [counter.hit_async("client:1", "2026-03-10", 5, 3600) for _ in range(3)]
            return await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=10)

        outcomes = asyncio.run(broken())
        assert [type(outcome) for outcome in outcomes] == [sqlite3.ProgrammingError] * 3
        assert counter.counts(["client:1"], "2026-03-10") == {}

    def test_the_database_keeps_only_the_latest_day_of_a_scope(self, database):
        counter = DatabaseCounter(database)
        counter.hit("client:1", "2026-03-09", 5, 3600)
        counter.hit("client:2", "2026-03-09", 5, 3600)
        counter.hit("client:1", "2026-03-10", 5, 3600)
        assert counter.counts(["client:1", "client:2"], "2026-03-09") == {"client:2": 1}
        assert counter.counts(["client:1"], "2026-03-10") == {"client:1": 1}

    def test_the_database_counts_the_same_on_a_reader_the_caller_already_holds(self, database):
        counter = DatabaseCounter(database)
        counter.hit("client:1", "2026-03-10", 5, 3600)
        counter.hit("client:1", "2026-03-10", 5, 3600)
        with database.reader() as reader:
            for scopes, expected in [
                (["client:1"], {"client:1": 2}),  # one scope: the prepared lookup
                (["client:1", "client:2"], {"client:1": 2}),  # many: one IN query
                (["client:2"], {}),
            ]:
                assert counter.counts(scopes, "2026-03-10", reader) == expected
                assert counter.counts(scopes, "2026-03-10") == expected

    @needs_redis
    def test_the_redis_counter_is_exact_under_concurrency(self, database):
        counter = RedisCounter.from_url(REDIS_URL, database)
        try:
            assert hammer(counter, 50, 120) == 50
            assert counter.counts(["client:1", "client:2"], "2026-03-10") == {"client:1": 50}
        finally:
            counter.close()


class TestKeyLookup:
    def test_a_key_call_reads_the_key_its_partners_timezones_and_its_client_in_one_statement(
        self, settings, clock, tmp_path
    ):
        from sqlalchemy import event

        from tenantry.db.migrate import upgrade
        from tenantry.db.session import Database
        from tenantry.partners.service import PartnerPlan, create_partner
        from tests.conftest import PartnerHandle

        url = f"sqlite:///{tmp_path / 'traced.db'}"
        upgrade(url)
        traced = Database(url)
        statements: list[str] = []
        event.listen(traced.engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(statements.append))
        app = create_app(settings.model_copy(update={"redis_url": None}), clock=clock, database=traced)
        with TestClient(app) as http:
            with traced.session(write=True) as session:
                created = create_partner(
                    session,
                    clock,
                    name="P",
                    admin_email="a@p.test",
                    plan=PartnerPlan(),
                    admin_password="x" * 12,
                )
                session.commit()
            partner = PartnerHandle(created.partner_id, created.admin_user_id, created.api_key)
            http.patch("/api/1/partner", json={"timezone": "Asia/Tokyo"}, headers=partner.headers)
            _, headers = metered_client(http, partner, clock, 5)
            statements.clear()
            assert http.get("/api/1/me", headers=headers).status_code == 200
        traced.dispose()
        lookups = [s for s in statements if "api_keys" in s]
        assert len(lookups) == 1
        assert "timezone_from" in lookups[0] and "JOIN partners" in lookups[0]
        assert [s for s in statements if "timezone" in s] == lookups

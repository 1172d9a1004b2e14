"""The web processes' cache of API key lookups (PostgreSQL and Redis: `auth.keycache`): a call
answered from it is answered as a fresh read would be. Every write to what the lookups read
(through the app, the worker, the command line, another process) changes the generation in Redis
before the writer is answered, so the next call anywhere reads the database again; a write made
outside the app is seen within `ENTRY_SECONDS`; without Redis every call reads the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import make_url, text

from tenantry.app import KEY_COMPANIONS
from tenantry.auth.keycache import ENTRY_SECONDS, KeyCache
from tenantry.auth.repository import key_lookup_tables
from tenantry.db.generation import GENERATION_KEY, WATCHED_TABLES, written_table
from tenantry.db.reads import _Together
from tenantry.db.session import database_from_settings
from tenantry.meter.resp import RespClient
from tests.conftest import REDIS_URL
from tests.factories import client_with_user, new_client, set_status


def test_the_watched_tables_are_every_table_the_key_lookups_read():
    assert key_lookup_tables(KEY_COMPANIONS.values()) == WATCHED_TABLES


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("INSERT INTO clients (name) VALUES (%(name)s)", "clients"),
        ('UPDATE "partners" SET used_users=1', "partners"),
        ("  update client_users set role='admin'", "client_users"),
        ("DELETE FROM api_keys WHERE id = 1", "api_keys"),
        ("DELETE FROM ONLY partner_users", "partner_users"),
        ("INSERT OR REPLACE INTO clients VALUES (1)", "clients"),
        ("TRUNCATE TABLE clients CASCADE", "clients"),
        ("ALTER TABLE clients ADD COLUMN x int", "clients"),
        ("DROP TABLE IF EXISTS clients", "clients"),
        ("SELECT * FROM clients", None),
        ("SELECT 1 FROM clients FOR UPDATE", None),
        ("INSERT INTO audit_events (action) VALUES ('x')", "audit_events"),
    ],
)
def test_a_statement_that_changes_a_table_is_told_from_a_read(statement, table):
    assert written_table(statement) == table


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


needs_redis = pytest.mark.skipif(not REDIS_URL, reason="the cache's generation lives in Redis")


@pytest.fixture
def cached(app, database):  # type: ignore[no-untyped-def]
    """The app's cache (PostgreSQL and Redis), with a count of the key lookups that read the
    database."""
    if database.engine.dialect.name != "postgresql":
        pytest.skip("the key lookups are cached with PostgreSQL and Redis only")
    cache = app.state.services.key_cache
    assert cache is not None
    return cache


@pytest.fixture
def database_reads(monkeypatch):  # type: ignore[no-untyped-def]
    """How many statements the key lookups sent to the database."""
    sent: list[int] = []
    read = _Together._read

    async def counted(self, query, waiting):  # type: ignore[no-untyped-def]
        sent.append(len(waiting))
        await read(self, query, waiting)

    monkeypatch.setattr(_Together, "_read", counted)
    return sent


class TestAnswersFromTheCache:
    def test_a_call_asked_again_reads_nothing_until_something_is_written(
        self, cached, http, partner, database_reads
    ):
        client_id = new_client(http, partner, "active")
        path = f"/api/1/clients/{client_id}"
        first = http.get(path, headers=partner.headers)
        read = len(database_reads)
        assert read >= 1
        assert http.get(path, headers=partner.headers).json() == first.json()
        assert len(database_reads) == read
        renamed = http.patch(path, json={"name": "Renamed"}, headers=partner.headers)
        assert renamed.status_code == 200
        read = len(database_reads)  # with the PATCH's own lookup of its key
        assert http.get(path, headers=partner.headers).json()["name"] == "Renamed"
        assert len(database_reads) == read + 1

    def test_a_revoked_key_is_refused_at_the_next_call(self, cached, http, partner):
        key = http.post("/api/1/me/api-keys", json={"name": "ci"}, headers=partner.headers).json()
        for _ in range(2):
            assert http.get("/api/1/me", headers=bearer(key["secret"])).status_code == 200
        assert (
            http.delete(f"/api/1/me/api-keys/{key['id']}", headers=bearer(key["secret"])).status_code == 204
        )
        assert http.get("/api/1/me", headers=bearer(key["secret"])).status_code == 401

    def test_a_disabled_clients_key_is_refused_at_the_next_call(self, cached, http, partner, clock):
        client_id, _, headers = client_with_user(http, partner, clock, "active", "a@client.test")
        for _ in range(2):
            assert http.get(f"/api/1/clients/{client_id}", headers=headers).status_code == 200
        set_status(http, partner, client_id, "disabled")
        refused = http.get(f"/api/1/clients/{client_id}", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["code"] == "account_suspended"

    def test_a_wrong_secret_with_a_cached_keys_prefix_is_refused(self, cached, http, partner):
        assert http.get("/api/1/me", headers=partner.headers).status_code == 200
        token = partner.headers["Authorization"].removeprefix("Bearer ")
        forged = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
        assert http.get("/api/1/me", headers=bearer(forged)).status_code == 401

    def test_a_trial_that_ends_is_refused_from_the_cache_at_its_end(self, cached, http, partner, clock):
        client_id, _, headers = client_with_user(http, partner, clock, "trial", "t@client.test")
        assert http.get(f"/api/1/clients/{client_id}", headers=headers).status_code == 200
        clock.advance(timedelta(days=15))  # no write: the clock alone
        refused = http.get(f"/api/1/clients/{client_id}", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (403, "trial_ended")


class TestWritesTheCacheIsToldOf:
    def test_a_write_of_another_process_pool_is_seen_at_the_next_call(self, cached, http, partner, settings):
        """The worker and the command line make their own pool (`database_from_settings`)."""
        client_id = new_client(http, partner, "active")
        path = f"/api/1/clients/{client_id}"
        assert http.get(path, headers=partner.headers).json()["name"] == "Client active"
        other = database_from_settings(settings)
        try:
            with other.session(write=True) as db:
                db.execute(text("UPDATE clients SET name = 'Elsewhere' WHERE id = :id"), {"id": client_id})
                db.commit()
        finally:
            other.dispose()
        assert http.get(path, headers=partner.headers).json()["name"] == "Elsewhere"

    def test_a_write_made_outside_the_app_is_seen_once_the_entry_runs_out(
        self, cached, http, partner, monkeypatch
    ):
        client_id = new_client(http, partner, "active")
        path = f"/api/1/clients/{client_id}"
        assert http.get(path, headers=partner.headers).json()["name"] == "Client active"
        url = make_url(http.app.state.services.database.url).set(drivername="postgresql")
        with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as outside:
            outside.execute("UPDATE clients SET name = 'By hand' WHERE id = %s", (client_id,))
        assert http.get(path, headers=partner.headers).json()["name"] == "Client active"
        later = cached._clock() + ENTRY_SECONDS + 1
        monkeypatch.setattr(cached, "_clock", lambda: later)
        assert http.get(path, headers=partner.headers).json()["name"] == "By hand"

    def test_an_emptied_redis_loses_no_write(self, cached, http, partner, settings):
        from redis import Redis

        client_id = new_client(http, partner, "active")
        path = f"/api/1/clients/{client_id}"
        assert http.get(path, headers=partner.headers).status_code == 200
        Redis.from_url(settings.redis_url).delete(GENERATION_KEY)
        http.patch(path, json={"name": "After"}, headers=partner.headers)
        assert http.get(path, headers=partner.headers).json()["name"] == "After"


@needs_redis
class TestTheCacheItself:
    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run(coroutine)

    def test_rows_read_while_a_write_commits_are_not_kept_under_the_newer_generation(self):
        """The generation is read before the database: a write that commits while the rows are read
        changes it after, so the next call reads again."""

        async def scenario() -> list[str]:
            client = RespClient(REDIS_URL)
            try:
                await client.execute("SET", GENERATION_KEY, "before")
                cache = KeyCache(lambda: client)
                answers = iter(["old", "new"])

                async def read_while_a_write_commits() -> list[str]:
                    found = next(answers)
                    await client.execute("SET", GENERATION_KEY, "after")  # the writer's, meanwhile
                    return [found]

                first = await cache.rows("k", read_while_a_write_commits)
                second = await cache.rows("k", read_while_a_write_commits)
                return [*first, *second]
            finally:
                await client.aclose()

        assert self.run(scenario()) == ["old", "new"]

    def test_without_an_answer_from_redis_every_call_reads_the_database(self):
        async def scenario() -> int:
            client = RespClient("redis://127.0.0.1:9/0", timeout=0.5)  # nothing listens there
            reads = 0

            async def read() -> list[str]:
                nonlocal reads
                reads += 1
                return ["row"]

            cache = KeyCache(lambda: client)
            for _ in range(3):
                assert await cache.rows("k", read) == ["row"]
            return reads

        assert self.run(scenario()) == 3

    def test_a_lookup_that_found_no_key_is_not_kept(self):
        async def scenario() -> int:
            client = RespClient(REDIS_URL)
            reads = 0

            async def read() -> list[str]:
                nonlocal reads
                reads += 1
                return []

            try:
                await client.execute("SET", GENERATION_KEY, "g")
                cache = KeyCache(lambda: client)
                for _ in range(3):
                    assert await cache.rows("k", read) == []
            finally:
                await client.aclose()
            return reads

        assert self.run(scenario()) == 3


def test_only_postgresql_with_redis_caches_the_key_lookups(app, database):
    cached = database.engine.dialect.name == "postgresql" and REDIS_URL is not None
    assert (app.state.services.key_cache is not None) is cached


def test_two_server_processes_see_each_others_writes_at_the_next_call(database_url, make_partner, tmp_path):
    """`tenantry serve --workers 2`, as an operator runs it: each process keeps its own cache, and a
    write answered by one is seen by the other at the next call (each call on a new connection, so
    the two processes share them)."""
    if not database_url.startswith("postgresql") or not REDIS_URL:
        pytest.skip("the key lookups are cached with PostgreSQL and Redis only")
    import httpx

    from tests.servers import served

    partner = make_partner()
    with served(database_url, REDIS_URL, tmp_path / "server.log", "--no-worker", "--workers", "2") as url:

        def names(path: str, headers: dict[str, str]) -> set[object]:
            seen = set()
            for _ in range(12):
                with httpx.Client(base_url=url, headers=headers, timeout=30) as fresh:
                    answer = fresh.get(path)
                    seen.add(answer.json().get("name") if answer.status_code == 200 else answer.status_code)
            return seen

        with httpx.Client(base_url=url, headers=partner.headers, timeout=30) as http:
            client_id = new_client(http, partner, "active")
            path = f"/api/1/clients/{client_id}"
            assert names(path, partner.headers) == {"Client active"}
            assert http.patch(path, json={"name": "Renamed"}).status_code == 200
            assert names(path, partner.headers) == {"Renamed"}
            key = http.post("/api/1/me/api-keys", json={"name": "ci"}).json()
            assert names(path, bearer(key["secret"])) == {"Renamed"}
            assert http.delete(f"/api/1/me/api-keys/{key['id']}").status_code == 204
            assert names(path, bearer(key["secret"])) == {401}

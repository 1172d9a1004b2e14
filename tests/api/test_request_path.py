"""The request path holds under load and faults (SPEC §12): bursts queue or get a quick 503 and never
wedge the server; bodies are capped before they are read; nothing runs for an anonymous caller;
database faults answer 503 at once and the server recovers when the database does."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import JSONResponse

from tenantry.api import idempotency
from tenantry.api.deps import Work
from tenantry.api.middleware import RequestMiddleware
from tenantry.app import create_app
from tenantry.db.models import Client, IdempotencyRecord, Partner
from tenantry.db.session import Database
from tests.conftest import PG_URL, REDIS_URL
from tests.factories import drop_every_connection, new_client
from tests.servers import live_server, served

BURST_CONNECTIONS = 200
BURST_SECONDS = 5.0
# Generous: a wedged server took minutes; a healthy one answers in milliseconds.
PROMPT_SECONDS = 5.0


def _burst(url: str, headers: dict[str, str], path: str) -> Counter[Any]:
    """BURST_CONNECTIONS clients asking for `path` back to back for BURST_SECONDS."""
    outcomes: Counter[Any] = Counter()

    async def one_client(client: httpx.AsyncClient, until: float) -> None:
        while time.monotonic() < until:
            try:
                response = await client.get(path)
            except httpx.HTTPError as exc:
                outcomes[type(exc).__name__] += 1
                continue
            code = response.json().get("code") if response.status_code >= 400 else None
            outcomes[(response.status_code, code)] += 1

    async def main() -> None:
        limits = httpx.Limits(max_connections=BURST_CONNECTIONS, max_keepalive_connections=BURST_CONNECTIONS)
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as client:
            until = time.monotonic() + BURST_SECONDS
            await asyncio.gather(*(one_client(client, until) for _ in range(BURST_CONNECTIONS)))

    asyncio.run(main())
    return outcomes


def _timed_get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.get(url + path, headers=headers, timeout=120)
    return response.status_code, time.monotonic() - started


class TestBursts:
    def test_two_hundred_concurrent_connections_queue_or_get_503_and_the_server_answers_at_once_after(
        self, database_url, make_partner, tmp_path
    ):
        partner = make_partner()
        with served(database_url, REDIS_URL, tmp_path / "server.log", "--no-worker") as url:
            outcomes = _burst(url, partner.headers, "/api/1/partner")
            after = [_timed_get(url, "/healthz"), _timed_get(url, "/api/1/partner", partner.headers)]
        answers = {k: n for k, n in outcomes.items() if isinstance(k, tuple)}
        lost = sum(n for k, n in outcomes.items() if not isinstance(k, tuple))
        # Every answer is a success or a quick 503; on a 2-core machine this loaded, the kernel may
        # now and then drop a connection of the 200 (never more than a few in a thousand).
        assert set(answers) <= {(200, None), (503, "overloaded")}, outcomes
        assert answers.get((200, None), 0) > 0
        assert lost <= sum(answers.values()) / 100, outcomes
        for status, seconds in after:
            assert status == 200
            assert seconds < PROMPT_SECONDS

    def test_a_request_that_waits_longer_than_the_queue_allows_gets_503_overloaded(
        self, settings, clock, database
    ):
        one_at_a_time = settings.model_copy(
            update={"max_concurrent_requests": 1, "request_queue_timeout_seconds": 0.3}
        )
        app = create_app(one_at_a_time, clock=clock, database=database)

        @app.get("/slow-for-a-test")
        async def slow() -> dict[str, bool]:
            await asyncio.sleep(2)
            return {"done": True}

        with live_server(app) as url:

            async def both() -> list[httpx.Response]:
                async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                    first = asyncio.create_task(client.get("/slow-for-a-test"))
                    await asyncio.sleep(0.2)
                    second = await client.get("/slow-for-a-test")
                    health = await client.get("/healthz")
                    return [await first, second, health]

            first, second, health = asyncio.run(both())
        assert first.status_code == 200
        assert second.status_code == 503
        assert second.json()["code"] == "overloaded"
        assert second.headers["retry-after"] == "1"
        assert health.status_code == 200  # never queued


def _raw_request(url: str, request: bytes, wait: float = 10.0) -> bytes:
    """Send `request` as it is (headers, maybe part of a body) and read what comes back."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pass
    return answer


class TestBodies:
    def test_a_body_declared_larger_than_the_limit_is_refused_before_it_is_sent(self, app):
        with live_server(app) as url:
            answer = _raw_request(
                url,
                b"POST /api/1/clients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 300000000\r\n\r\n{",
            )
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"payload_too_large" in answer or b"application/problem+json" in answer

    def test_a_streamed_body_over_the_limit_is_cut_off_with_413(self, app, partner):
        def chunks():  # no Content-Length: the limit is counted as the body streams in
            for _ in range(8):
                yield b" " * (1024 * 1024)

        with live_server(app) as url:
            response = httpx.post(
                url + "/api/1/clients",
                content=chunks(),
                headers={**partner.headers, "Content-Type": "application/json"},
                timeout=60,
            )
        assert response.status_code == 413
        assert response.json()["code"] == "payload_too_large"

    def test_an_anonymous_post_is_refused_without_waiting_for_its_body(self, app):
        with live_server(app) as url:
            answer = _raw_request(
                url,
                b"POST /api/1/clients HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000\r\n\r\n{",
            )
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]

    def test_anonymous_posts_with_an_idempotency_key_store_nothing(self, http, db):
        for n in range(20):
            response = http.post("/api/1/clients", json={"name": "x"}, headers={"Idempotency-Key": f"k{n}"})
            assert response.status_code == 401
        bad_key = {"Authorization": "Bearer tnt_000000000000_nope", "Idempotency-Key": "k"}
        assert http.post("/api/1/clients", json={"name": "x"}, headers=bad_key).status_code == 401
        assert db.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


class TestIdempotency:
    def test_a_replay_after_the_key_was_revoked_is_refused_and_shows_nothing(self, http, partner):
        first_key = {**partner.headers, "Idempotency-Key": "mint-1"}
        minted = http.post("/api/1/me/api-keys", json={"name": "second"}, headers=first_key)
        assert minted.status_code == 201
        own = http.get("/api/1/me/api-keys", headers=partner.headers).json()["items"]
        calling = next(k for k in own if partner.api_key.startswith(f"tnt_{k['prefix']}_"))
        second = {"Authorization": f"Bearer {minted.json()['secret']}"}
        assert http.delete(f"/api/1/me/api-keys/{calling['id']}", headers=second).status_code == 204

        replay = http.post("/api/1/me/api-keys", json={"name": "second"}, headers=first_key)
        assert replay.status_code == 401
        assert "secret" not in replay.text
        assert "tnt_" not in replay.text

    BODY = b'{"name": "After a crash"}'

    def _left_pending(
        self, http: TestClient, db: Any, partner: Any, key: str, age: float, clock: Any
    ) -> None:
        """What a process killed in the middle of a request leaves behind: a record never finished
        (in the same scope as the caller's own records, learnt from a finished one)."""
        assert self._post(http, partner, "probe").status_code == 201
        scope = db.scalars(select(IdempotencyRecord.scope).where(IdempotencyRecord.key == "probe")).one()
        request_hash = hashlib.sha256(b"POST /api/1/clients?\n" + self.BODY).hexdigest()
        db.add(
            IdempotencyRecord(
                scope=scope,
                key=key,
                request_hash=request_hash,
                created_at=clock.now() - timedelta(seconds=age),
            )
        )
        db.commit()

    def _post(self, http: TestClient, partner: Any, key: str) -> Any:
        headers = {**partner.headers, "Idempotency-Key": key, "Content-Type": "application/json"}
        return http.post("/api/1/clients", content=self.BODY, headers=headers)

    def test_a_key_left_pending_by_a_crashed_request_is_usable_again_after_the_request_time_out(
        self, http, db, partner, clock
    ):
        self._left_pending(http, db, partner, "crashed", age=61, clock=clock)
        created = self._post(http, partner, "crashed")
        assert created.status_code == 201
        replay = self._post(http, partner, "crashed")
        assert replay.status_code == 201
        assert replay.headers.get("idempotent-replayed") == "true"
        assert replay.json()["id"] == created.json()["id"]

    def test_a_request_whose_process_died_after_its_work_committed_is_not_done_again(
        self, http, db, partner, clock, monkeypatch
    ):
        """Killed between its commit and the record of its answer: the retry must not create a
        second client; it is told the first was carried out."""
        # The process ends right after the request's own commit: the answer is never recorded.
        monkeypatch.setattr(idempotency, "_finish", lambda *args, **kwargs: None)
        assert self._post(http, partner, "committed").status_code == 201
        monkeypatch.undo()
        db.rollback()
        record = db.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "committed")).one()
        assert (record.status_code, record.carried_out_at) == (None, clock.now())
        clock.advance(timedelta(seconds=61))  # past the request time-out: the caller retries
        retry = self._post(http, partner, "committed")
        assert retry.status_code == 409
        assert retry.json()["title"] == "Request carried out, answer lost"
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Client).where(Client.name == "After a crash")) == 1
        other = http.post(
            "/api/1/clients",
            json={"name": "Something else"},
            headers={**partner.headers, "Idempotency-Key": "committed"},
        )
        assert other.json()["code"] == "idempotency_conflict" and other.status_code == 409

    def test_a_request_that_fails_after_its_work_committed_is_not_done_again(
        self, app, db, partner, clock, monkeypatch
    ):
        """An answer of 500 frees its key for a new attempt, unless the work had committed."""

        committing = Work._run

        def commit_then_fail(self: Work, fn: Any, *args: Any, **kwargs: Any) -> Any:
            committing(self, fn, *args, **kwargs)
            raise RuntimeError("the answer could not be made")

        with TestClient(app, raise_server_exceptions=False) as http:
            monkeypatch.setattr(Work, "_run", commit_then_fail)
            assert self._post(http, partner, "failed-late").status_code == 500
            monkeypatch.undo()
            assert self._post(http, partner, "failed-late").status_code == 409  # told to wait
            clock.advance(timedelta(seconds=61))
            retry = self._post(http, partner, "failed-late")
            assert (retry.status_code, retry.json()["title"]) == (409, "Request carried out, answer lost")
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Client).where(Client.name == "After a crash")) == 1

    def test_a_key_still_pending_within_the_request_time_out_is_told_to_retry(self, http, db, partner, clock):
        self._left_pending(http, db, partner, "running", age=5, clock=clock)
        response = self._post(http, partner, "running")
        assert response.status_code == 409
        assert response.headers["retry-after"] == "1"


class TestARequestTakenForDead:
    @pytest.mark.skipif(
        not PG_URL, reason="needs a row lock that holds one request while others run (PostgreSQL)"
    )
    def test_a_retry_past_the_request_time_out_while_the_first_still_runs_creates_one_client(
        self, server_url, partner, database, clock, settings
    ):
        # `request_timeout_seconds` only takes a request for dead: if it was only slow (here, held
        # at its pool check by another transaction), whichever of the two commits second keeps nothing.
        headers = {**partner.headers, "Idempotency-Key": "slow-1"}

        def post() -> httpx.Response:
            with httpx.Client(base_url=server_url, timeout=60) as live:
                return live.post("/api/1/clients", json={"name": "Slow"}, headers=headers)

        def claimed_at() -> Any:
            with database.session() as look:
                return look.scalar(
                    select(IdempotencyRecord.created_at).where(IdempotencyRecord.key == "slow-1")
                )

        with ThreadPoolExecutor(2) as pool, database.session(write=True) as hold:
            hold.execute(select(Partner.id).where(Partner.id == partner.id).with_for_update())
            first = pool.submit(post)
            for _ in range(400):  # until the first request has claimed its key and waits
                if claimed_at() is not None:
                    break
                time.sleep(0.05)
            first_claim = claimed_at()
            assert first_claim is not None and not first.done()
            clock.advance(timedelta(seconds=settings.request_timeout_seconds + 1))
            second = pool.submit(post)
            for _ in range(400):  # until the retry has taken the record over
                if second.done() or claimed_at() != first_claim:
                    break
                time.sleep(0.05)
            hold.rollback()  # the lock goes: both run on
            answers = [first.result(), second.result()]
        assert sorted(answer.status_code for answer in answers) == [201, 409]
        refused = next(answer for answer in answers if answer.status_code == 409)
        assert refused.json()["code"] == "idempotency_conflict"
        with database.session() as look:
            assert look.scalar(select(func.count()).select_from(Client).where(Client.name == "Slow")) == 1
        replay = httpx.post(f"{server_url}/api/1/clients", json={"name": "Slow"}, headers=headers)
        assert (replay.status_code, replay.headers.get("idempotent-replayed")) == (201, "true")


class TestWhatIdempotencyKeeps:
    """An idempotency record holds no secret in the clear: answers are sealed, requests are known
    by a keyed HMAC, and records past their 24 hours are removed."""

    @staticmethod
    def _kept_answers(db: Any) -> bytes:
        db.rollback()
        return b"\n".join(bytes(body or b"") for body in db.scalars(select(IdempotencyRecord.body)))

    def test_an_api_keys_secret_is_not_kept_in_the_clear_and_its_replay_shows_it_again(
        self, http, partner, db
    ):
        headers = {**partner.headers, "Idempotency-Key": "key-1"}
        created = http.post("/api/1/me/api-keys", json={"name": "ci"}, headers=headers)
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert secret.encode() not in self._kept_answers(db)
        replay = http.post("/api/1/me/api-keys", json={"name": "ci"}, headers=headers)
        assert (replay.status_code, replay.headers.get("idempotent-replayed")) == (201, "true")
        assert replay.json() == created.json()

    def test_a_totp_secret_and_recovery_codes_are_not_kept_in_the_clear(self, http, partner, clock, db):
        begun = http.post("/api/1/me/mfa/totp", headers={**partner.headers, "Idempotency-Key": "t-1"})
        assert begun.status_code == 201
        secret = begun.json()["secret"]
        confirmed = http.post(
            "/api/1/me/mfa/totp/confirm",
            json={"code": pyotp.TOTP(secret).at(clock.now())},
            headers={**partner.headers, "Idempotency-Key": "t-2"},
        )
        assert confirmed.status_code == 200
        kept = self._kept_answers(db)
        assert [s for s in [secret, *confirmed.json()["recovery_codes"]] if s.encode() in kept] == []

    def test_a_password_in_a_request_cannot_be_guessed_from_the_kept_request_hash(self, http, partner, db):
        client_id = new_client(http, partner)
        path = f"/api/1/clients/{client_id}/users"

        def body(password: str) -> bytes:
            return json.dumps(
                {"email": "ann@client.test", "name": "Ann", "role": "admin", "password": password}
            ).encode()

        headers = {**partner.headers, "Idempotency-Key": "u-1", "Content-Type": "application/json"}
        created = http.post(path, content=body("summer holidays 2026"), headers=headers)
        assert created.status_code == 201, created.text
        db.rollback()
        kept = db.scalars(select(IdempotencyRecord.request_hash)).one()
        guesses = ["password123456", "summer holidays 2026"]
        plain = [hashlib.sha256(b"POST " + path.encode() + b"?\n" + body(g)).hexdigest() for g in guesses]
        assert kept not in plain
        assert http.post(path, content=body("summer holidays 2026"), headers=headers).status_code == 201
        assert http.post(path, content=body("winter holidays 2026"), headers=headers).status_code == 409

    def test_records_past_their_24_hours_are_removed_by_later_keyed_requests(self, http, partner, db, clock):
        headers = {**partner.headers, "Idempotency-Key": "old"}
        assert http.post("/api/1/clients", json={"name": "Old"}, headers=headers).status_code == 201
        clock.advance(timedelta(hours=25))
        for n in range(2):
            later = {**partner.headers, "Idempotency-Key": f"new-{n}"}
            assert http.post("/api/1/clients", json={"name": f"New {n}"}, headers=later).status_code == 201
        db.rollback()
        assert sorted(db.scalars(select(IdempotencyRecord.key))) == ["new-0", "new-1"]

    def test_a_retry_after_a_connection_dropped_mid_body_creates_the_client_once(
        self, server_url, partner, db
    ):
        body = json.dumps({"name": "Dropped upload", "description": "x" * 2000}).encode()
        headers = {**partner.headers, "Idempotency-Key": "upload-1"}
        parts = urlsplit(server_url)
        with socket.create_connection((parts.hostname, parts.port)) as sock:
            head = [
                "POST /api/1/clients HTTP/1.1",
                f"Host: {parts.netloc}",
                "Content-Type: application/json",
                f"Content-Length: {len(body)}",
                *(f"{name}: {value}" for name, value in headers.items()),
                "",
                "",
            ]
            sock.sendall("\r\n".join(head).encode() + body[: len(body) // 2])
            time.sleep(0.2)  # the server starts reading the body, then the connection drops
        with httpx.Client(base_url=server_url) as live:
            for _ in range(100):  # "in progress" while the server still winds the dropped one up
                retry = live.post(
                    "/api/1/clients", content=body, headers={**headers, "Content-Type": "application/json"}
                )
                if not (retry.status_code == 409 and retry.headers.get("retry-after")):
                    break
                time.sleep(0.1)
        assert retry.status_code == 201, retry.text
        db.rollback()
        assert db.scalar(select(func.count()).select_from(Client).where(Client.name == "Dropped upload")) == 1


class TestDatabaseFaults:
    def test_a_write_blocked_by_a_held_lock_answers_503_quickly(
        self, settings, clock, database, make_partner
    ):
        partner = make_partner()
        quick = settings.model_copy(update={"db_lock_timeout_seconds": 0.5})
        app_database = Database(database.url, lock_timeout=0.5)
        app = create_app(quick, clock=clock, database=app_database)
        with TestClient(app, raise_server_exceptions=False) as http:
            created = http.post("/api/1/clients", json={"name": "Locked"}, headers=partner.headers)
            assert created.status_code == 201
            client_id = created.json()["id"]
            with _held_write_lock(database, partner.id):
                started = time.monotonic()
                response = http.patch(
                    f"/api/1/clients/{client_id}", json={"name": "Renamed"}, headers=partner.headers
                )
                seconds = time.monotonic() - started
            after = http.get(f"/api/1/clients/{client_id}", headers=partner.headers)
        app_database.dispose()
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert int(response.headers["retry-after"]) > 0
        assert seconds < PROMPT_SECONDS
        assert after.json()["name"] == "Locked"  # the refused request changed nothing

    def test_an_unreachable_database_answers_503_not_500(self, settings, clock, tmp_path):
        url = "postgresql+psycopg://postgres@127.0.0.1:1/none" if PG_URL else f"sqlite:///{tmp_path}/no/x.db"
        unreachable = Database(url)
        with TestClient(create_app(settings, clock=clock, database=unreachable)) as http:
            response = http.get(
                "/api/1/partner", headers={"Authorization": "Bearer tnt_0123456789ab_whatever"}
            )
        unreachable.dispose()
        assert response.status_code == 503
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["retry-after"] == "5"

    @pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)")
    def test_after_the_server_drops_every_connection_the_next_request_succeeds(self, http, partner, database):
        # Requests at once, so the pools hold several connections, every one of which will die.
        with ThreadPoolExecutor(8) as pool:
            warm = list(pool.map(lambda _: http.get("/api/1/partner", headers=partner.headers), range(32)))
        assert {r.status_code for r in warm} == {200}
        drop_every_connection(database)
        for _ in range(3):
            assert http.get("/api/1/partner", headers=partner.headers).status_code == 200


class _held_write_lock:
    """Hold the write lock another request needs: SQLite's, or the partner row on PostgreSQL."""

    def __init__(self, database: Database, partner_id: int) -> None:
        self.database, self.partner_id = database, partner_id

    def __enter__(self) -> None:
        url = self.database.engine.url
        if self.database.is_sqlite:
            self.conn: Any = sqlite3.connect(url.database, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn = psycopg.connect(
                url.set(drivername="postgresql").render_as_string(hide_password=False)
            )
            self.conn.execute("SELECT id FROM partners WHERE id = %s FOR UPDATE", (self.partner_id,))

    def __exit__(self, *_: object) -> None:
        self.conn.rollback() if not self.database.is_sqlite else self.conn.execute("ROLLBACK")
        self.conn.close()


def test_unhandled_errors_are_500_problems_naming_the_request(app, http):
    @app.get("/fails-for-a-test")
    async def fails(request: Request) -> JSONResponse:
        raise RuntimeError("something broke")

    response = http.get("/fails-for-a-test", headers={"X-Request-ID": "req-0123456789"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert response.json()["request_id"] == "req-0123456789"
    assert response.headers["x-request-id"] == "req-0123456789"


@pytest.fixture
def small_disk(tmp_path):  # type: ignore[no-untyped-def]
    """A real, tiny filesystem (tmpfs of 4 MB) to fill up. Mounting needs root, as CI runs."""
    import os
    import subprocess

    if PG_URL or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs, and a SQLite database")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_503_and_healthz_says_so(small_disk, settings, clock):
    from tenantry.db.migrate import upgrade
    from tenantry.partners.service import PartnerPlan, create_partner

    url = f"sqlite:///{small_disk}/tenantry.db"
    upgrade(url)
    database = Database(url)
    app = create_app(settings, clock=clock, database=database)
    with TestClient(app, raise_server_exceptions=False) as http:
        with database.session(write=True) as session:
            partner = create_partner(
                session, clock, name="P", admin_email="a@p.test", plan=PartnerPlan(), admin_password=None
            )
            session.commit()
        headers = {"Authorization": f"Bearer {partner.api_key}"}
        assert http.get("/healthz").json()["disk"] == "ok"
        _fill(small_disk / "filler")
        responses = [
            http.post("/api/1/clients", json={"name": f"C{n}", "description": "x" * 5000}, headers=headers)
            for n in range(5)
        ]
        health = http.get("/healthz")
    database.dispose()
    assert {r.status_code for r in responses} <= {201, 503}
    assert responses[-1].status_code == 503
    assert responses[-1].json()["code"] == "database_unavailable"
    assert health.status_code == 503
    assert health.json()["disk"] == "full"


def _fill(path: Any) -> None:
    """Write zeros until the filesystem has no byte left."""
    import os

    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(descriptor, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def test_a_request_enters_the_apps_own_middleware_first_without_fastapis_outer_layers(app):
    """`RequestMiddleware` answers every error and limits bodies itself: FastAPI's server-error,
    telemetry and body-limit layers around it would only cost each request its calls."""
    layers, layer = [], app.build_middleware_stack()
    while layer is not app.router:
        layers.append(type(layer).__name__)
        layer = layer.app
    assert layers == [
        "RequestMiddleware",
        "HostMiddleware",
        "ApiAuthMiddleware",
        "IdempotencyMiddleware",
        "ExceptionMiddleware",
        "AsyncExitStackMiddleware",
    ]


def test_should_the_error_answer_itself_fail_the_client_still_gets_a_500_and_the_server_goes_on(
    app, monkeypatch
):
    """Nothing stands outside `RequestMiddleware`: when even its answer to an error fails, the
    server's own last resort (uvicorn's plain 500) answers, and the next request is served."""

    @app.get("/fails-for-a-test")
    async def fails(request: Request) -> JSONResponse:
        raise RuntimeError("something broke")

    async def broken(*args: Any) -> None:
        raise RuntimeError("the error answer broke too")

    monkeypatch.setattr(RequestMiddleware, "_answer_error", broken)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        assert http.get("/fails-for-a-test").status_code == 500
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("caught", [500, Exception])
def test_a_handler_for_every_error_is_refused_since_request_middleware_answers_those(settings, clock, caught):
    made = create_app(settings, clock=clock)
    made.add_exception_handler(caught, lambda request, exc: JSONResponse({}, status_code=500))
    with pytest.raises(TypeError, match="narrower class"):
        made.build_middleware_stack()


def test_the_apps_root_path_still_reaches_each_request(app):
    @app.get("/root-path-for-a-test")
    async def seen(request: Request) -> JSONResponse:
        return JSONResponse({"root_path": request.scope["root_path"]})

    app.root_path = "/behind-a-proxy"
    with TestClient(app) as http:
        assert http.get("/root-path-for-a-test").json() == {"root_path": "/behind-a-proxy"}


class TestHead:
    """HEAD is answered as GET is, with its headers and no body (RFC 9110 §9.3.2): an uptime check
    or a link preview asks with HEAD."""

    def test_every_get_page_and_api_answer_has_a_head(self, app, http, partner):
        client_id = new_client(http, partner, "active")
        paths = ["/", "/login", "/forgot", "/healthz", f"/api/1/clients/{client_id}", "/api/1/openapi.json"]
        with live_server(app) as url, httpx.Client(base_url=url, headers=partner.headers) as client:
            for path in paths:
                got, head = client.get(path), client.head(path)
                assert (path, head.status_code) == (path, got.status_code)
                assert got.status_code in (200, 303)
                assert head.content == b""
                assert head.headers.get("content-type") == got.headers.get("content-type")
                assert head.headers.get("location") == got.headers.get("location")
                assert head.headers["content-length"] == str(len(got.content))
                assert head.headers["x-content-type-options"] == "nosniff"
            # The connection is still good after each HEAD: its answer held no body.
            assert client.get("/healthz").status_code == 200

    def test_a_head_of_a_path_without_get_is_405_naming_the_methods_there_are(self, http, partner):
        head = http.head("/api/1/auth/password-reset")
        assert head.status_code == 405
        assert head.content == b""
        assert "POST" in head.headers["allow"]

    def test_a_head_is_authenticated_as_its_get_is(self, http, partner):
        client_id = new_client(http, partner, "active")
        assert http.head(f"/api/1/clients/{client_id}").status_code == 401
        other = http.head(f"/api/1/clients/{client_id + 1000}", headers=partner.headers)
        assert other.status_code == 404

"""The worker runs its jobs concurrently and fairly (SPEC §12 "Deadlines are totals", §2 "a due
refresh starts within 5 s"): one partner's slow jobs never hold up another partner's by more
than a job's own deadline, and no job outlives its lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.app import create_app
from tenantry.db.dashboard_models import DataSource
from tenantry.mail import SmtpMailer
from tests.content import dashboard_in, make_client
from tests.servers import local_http_server

PROMPTLY = 5.0  # seconds (SPEC §2: a due refresh starts within 5 s); the slow jobs take 10 each


class Hanging:
    """A webhook receiver (and data server) that reads the request and then never answers,
    until released."""

    def __init__(self) -> None:
        self.url = ""
        self.arrived = 0
        self.release = threading.Event()


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    state = Hanging()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.arrived += 1
            state.release.wait(60)

        do_GET = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        state.url = base + "/hang"
        try:
            yield state
        finally:
            state.release.set()


def wait_until(condition, seconds: float) -> float:
    """Poll a real server until `condition()`; return the seconds it took (or fail)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - started


class Running:
    """`Worker.run()` in a thread, as `tenantry worker` runs it."""

    def __init__(self, worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


class TestOnePartnersSlowJobsDelayNoOtherPartner:
    def test_another_partners_webhook_refresh_and_new_event_arrive_promptly_behind_hanging_jobs(
        self,
        http,
        make_partner,
        hanging,
        receiver,
        data_server,
        make_worker,
        silent_smtp,
        settings,
        clock,
        database,
    ):
        slow = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        other = make_partner(dashboards=10, users=10, published_links=10, api_calls_per_day=1000)
        for _ in range(5):
            response = http.post("/api/1/webhooks", json={"url": hanging.url}, headers=slow.headers)
            assert response.status_code == 201
        make_client(http, slow, "trial")  # an event: five deliveries that hang
        # Three e-mails to an SMTP server that never answers.
        mailer = SmtpMailer(silent_smtp.host, silent_smtp.port, "tenantry@example.test")
        with TestClient(create_app(settings, clock=clock, database=database, mailer=mailer)) as smtp_http:
            _, _, dashboard_id = dashboard_in(smtp_http, slow, "active")
            for n in range(3):
                sent = smtp_http.post(
                    f"/api/1/dashboards/{dashboard_id}/email",
                    json={"to": [f"boss{n}@client.test"]},
                    headers=slow.headers,
                )
                assert sent.status_code == 202
        hook = http.post("/api/1/webhooks", json={"url": receiver.url}, headers=other.headers)
        assert hook.status_code == 201
        client_id = make_client(http, other, "trial")
        source = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "s", "kind": "url", "url": data_server.serve("/s.csv", "a\n1\n"), "format": "csv"},
            headers=other.headers,
        )
        assert source.status_code == 201

        with Running(make_worker(mailer, poll_seconds=0.1)):
            assert wait_until(lambda: len(receiver.received) == 1, PROMPTLY) < PROMPTLY
            assert wait_until(lambda: data_server.hits == ["/s.csv"], PROMPTLY) < PROMPTLY
            assert hanging.arrived >= 1  # the slow partner's jobs are running meanwhile
            # The worker keeps claiming while jobs run: a new event is delivered promptly too.
            http.patch(f"/api/1/clients/{client_id}", json={"status": "disabled"}, headers=other.headers)
            assert wait_until(lambda: len(receiver.received) == 2, PROMPTLY) < PROMPTLY
            # Let the hanging jobs end, so that stopping (which finishes them) is quick.
            hanging.release.set()
            silent_smtp.hang_up()

    def test_a_claim_takes_turns_across_partners(
        self, http, make_partner, data_server, make_worker, database
    ):
        busy = make_partner()
        quiet = make_partner()
        busy_client = make_client(http, busy, "active")
        for n in range(10):
            http.post(
                f"/api/1/clients/{busy_client}/datasources",
                json={
                    "name": f"b{n}",
                    "kind": "url",
                    "url": data_server.serve(f"/b{n}.csv", "a\n1\n"),
                    "format": "csv",
                },
                headers=busy.headers,
            )
        quiet_client = make_client(http, quiet, "active")
        http.post(
            f"/api/1/clients/{quiet_client}/datasources",
            json={"name": "q", "kind": "url", "url": data_server.serve("/q.csv", "a\n1\n"), "format": "csv"},
            headers=quiet.headers,
        )
        # Four slots: the busy partner may take three, and the quiet one's refresh is among the first.
        assert make_worker(batch=4, concurrency=4).run_refreshes() == 4
        assert "/q.csv" in data_server.hits
        assert len(data_server.hits) == 4


class TestTheLoopLooksAgainWhenItShould:
    def test_a_partners_backlog_beyond_its_share_runs_without_waiting_for_the_poll(
        self, http, make_partner, hanging, make_worker
    ):
        """A claim that finds only a partner whose share of the slots is taken finds none; the
        partner's next jobs start as soon as its running jobs end, not a poll later."""
        busy = make_partner()
        client_id = make_client(http, busy, "active")
        for n in range(10):
            made = http.post(
                f"/api/1/clients/{client_id}/datasources",
                json={"name": f"b{n}", "kind": "url", "url": f"{hanging.url}/{n}", "format": "csv"},
                headers=busy.headers,
            )
            assert made.status_code == 201
        # Four slots, three for one partner; a poll of a minute would leave seven waiting a minute.
        with Running(make_worker(batch=4, concurrency=4, poll_seconds=60)):
            wait_until(lambda: hanging.arrived == 3, PROMPTLY)
            time.sleep(0.5)  # the loop looks again meanwhile, and finds none it may take
            assert hanging.arrived == 3
            hanging.release.set()
            wait_until(lambda: hanging.arrived == 10, PROMPTLY)

    @pytest.mark.parametrize(
        ("dispatched", "next_in"),
        [
            (100, 0.0),  # a full batch: more may be waiting, at once
            (3, 0.25),  # some: a moment later, with the events written meanwhile
            (0, 5.0),  # none: a poll later
        ],
    )
    def test_events_are_fanned_out_in_batches_while_they_keep_coming(self, make_worker, dispatched, next_in):
        worker = make_worker(poll_seconds=5.0)
        before = time.monotonic()
        worker._looked_events(dispatched)
        due_at = worker._next_look["events"]
        if next_in == 0.0:
            assert due_at == 0.0
        else:
            assert before + next_in <= due_at <= time.monotonic() + next_in

    def test_an_idle_worker_looks_for_each_kind_of_work_once_per_poll(
        self, make_worker, database, monkeypatch
    ):
        worker = make_worker(poll_seconds=0.2)
        looks: list[str] = []
        for kind in ("refreshes", "deliveries", "mails", "reports"):
            claim = getattr(worker, f"_claim_{kind}")

            def counted(limit, claim=claim, kind=kind):
                looks.append(kind)
                return claim(limit)

            monkeypatch.setattr(worker, f"_claim_{kind}", counted)
        with Running(worker):
            time.sleep(1.1)
        # About six polls in 1.1 s (the first at once): not one per turn of the loop.
        for kind in ("refreshes", "deliveries", "mails", "reports"):
            assert 4 <= looks.count(kind) <= 8, looks


class TestDeadlinesAndLeases:
    def test_a_job_ends_before_its_lease_whatever_the_server_drips(
        self, http, partner, hanging, make_worker, database
    ):
        client_id = make_client(http, partner, "active")
        created = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={"name": "s", "kind": "url", "url": hanging.url, "format": "csv"},
            headers=partner.headers,
        )
        source_id = created.json()["id"]
        worker = make_worker(lease=timedelta(seconds=4))
        started = time.monotonic()
        worker.run_once()
        # Half of what is left of a 4-second lease, not the 10-second deadline of a fetch.
        assert time.monotonic() - started < 3.5
        with database.session() as db:
            source = db.scalars(select(DataSource).where(DataSource.id == source_id)).one()
        assert (source.last_error, source.lease_owner) == ("timed out", None)

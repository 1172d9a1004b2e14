"""Several `tenantry worker` processes against one PostgreSQL database: no source is refreshed
twice in one interval, and a worker killed mid-refresh loses no job.

These run only when TENANTRY_TEST_DATABASE_URL names a PostgreSQL server (and fail, through the
`database_url` fixture, when it is set but cannot be reached). They wait for real processes, so
they poll; they never sleep to move time and assert no duration.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from sqlalchemy import select

from tenantry.db.dashboard_models import DataSource
from tests.conftest import PG_URL
from tests.content import make_client
from tests.servers import WAIT_SECONDS, local_http_server, wait_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="needs TENANTRY_TEST_DATABASE_URL (PostgreSQL)"),
]


@pytest.fixture
def workers(spawn: Callable[..., subprocess.Popen[bytes]]) -> Callable[..., subprocess.Popen[bytes]]:
    def start(lease_seconds: float = 60, batch: int = 2) -> subprocess.Popen[bytes]:
        return spawn(
            "worker", "--lease-seconds", str(lease_seconds), "--batch", str(batch), "--poll-seconds", "0.1"
        )

    return start


class Server:
    """A local data server; requests to `/hold` block until `release` is set, once."""

    def __init__(self) -> None:
        self.base = ""
        self.hits: list[str] = []
        self.release = threading.Event()
        self.held = threading.Event()
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                state.hits.append(self.path)
                if self.path == "/hold" and not state.held.is_set():
                    state.held.set()
                    state.release.wait(WAIT_SECONDS)
                    return
                body = b"n\n1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.handler = Handler


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    with local_http_server(state.handler) as base:
        state.base = base
        try:
            yield state
        finally:
            state.release.set()


def add_sources(http, partner, client_id, server, paths):
    for path in paths:
        response = http.post(
            f"/api/1/clients/{client_id}/datasources",
            json={
                "name": path,
                "kind": "url",
                "url": server.base + path,
                "format": "csv",
                "refresh_interval": 3600,
            },
            headers=partner.headers,
        )
        assert response.status_code == 201, response.text


def sources(database) -> list[DataSource]:
    with database.session() as db:
        return list(db.scalars(select(DataSource).order_by(DataSource.id)))


class TestManyWorkers:
    def test_two_workers_never_refresh_the_same_source_twice_in_one_interval(
        self, http, partner, database, server, workers
    ):
        first, second = workers(), workers()
        # Both must be running (and handling SIGTERM) before there is work: one worker alone runs
        # 40 local refreshes faster than the other starts.
        for process in (first, second):
            wait_for(lambda p=process: "worker started" in p.log_path.read_text(), "the worker to start")
        client_id = make_client(http, partner, "active")
        paths = [f"/s{n}.csv" for n in range(40)]
        add_sources(http, partner, client_id, server, paths)
        wait_for(lambda: all(s.last_refreshed_at is not None for s in sources(database)), "every refresh")
        for process in (first, second):
            process.send_signal(signal.SIGTERM)
        assert [first.wait(WAIT_SECONDS), second.wait(WAIT_SECONDS)] == [0, 0]
        assert sorted(server.hits) == sorted(paths)
        assert all(s.lease_owner is None for s in sources(database))

    def test_a_worker_killed_mid_refresh_loses_no_job(self, http, partner, database, server, workers):
        client_id = make_client(http, partner, "active")
        add_sources(http, partner, client_id, server, ["/hold"])
        doomed = workers(lease_seconds=2)
        wait_for(server.held.is_set, "the first worker to start fetching")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(WAIT_SECONDS)
        assert sources(database)[0].lease_owner is not None  # the dead worker's lease remains
        workers(lease_seconds=2)
        wait_for(lambda: sources(database)[0].last_refreshed_at is not None, "another worker to finish it")
        finished = sources(database)[0]
        assert (finished.row_count, finished.lease_owner, finished.last_error) == (1, None, None)
        assert server.hits == ["/hold", "/hold"]


class TestConcurrentClaims:
    """Two workers claim at the same moment; the first claim's transaction is still open (its rows
    stay locked meanwhile), and the second takes other jobs rather than none."""

    @pytest.mark.parametrize(
        ("sources", "batch", "share", "each"),
        [
            pytest.param(40, 4, 4, 4, id="the next free jobs while another worker holds the first"),
            # A claim locks only the jobs it takes: those beyond the partner's share stay free.
            pytest.param(12, 9, 6, 6, id="the jobs beyond a partner's share in the other's claim"),
        ],
    )
    def test_a_claim_takes(self, http, partner, database, server, clock, sources, batch, share, each):
        from datetime import timedelta

        from tenantry.db.leases import Shares
        from tenantry.worker.repository import claim

        client_id = make_client(http, partner, "active")
        add_sources(http, partner, client_id, server, [f"/c{n}.csv" for n in range(sources)])
        now, until = clock.now(), clock.now() + timedelta(seconds=60)
        with database.session(write=True) as first, database.session(write=True) as second:
            held = claim(first, "first", now, until, batch, Shares(share))
            taken = claim(second, "second", now, until, batch, Shares(share))
            second.commit()
            first.commit()
        assert len(held) == len(taken) == each
        assert not {j.source_id for j in held} & {j.source_id for j in taken}

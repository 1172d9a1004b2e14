"""`tenantry worker` and the worker inside `tenantry serve`, as real processes (SPEC §10)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tenantry.db.dashboard_models import DataSource
from tests.content import make_client
from tests.servers import WAIT_SECONDS, free_port, wait_for


def refreshed(database, source_id):
    with database.session() as db:
        return db.scalars(select(DataSource.last_refreshed_at).where(DataSource.id == source_id)).one()


def url_source(client, headers, base, client_id, url):
    response = client.post(
        f"{base}/api/1/clients/{client_id}/datasources",
        json={"name": "s", "kind": "url", "url": url, "format": "csv", "refresh_interval": 60},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


class TestWorkerCommand:
    def test_bad_options_exit_2_with_a_reason(self, database_url):
        result = subprocess.run(
            [sys.executable, "-m", "tenantry.cli", "worker", "--batch", "0"],
            env={"TENANTRY_DATABASE_URL": database_url, "PATH": ""},
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("error: ")

    def test_a_database_that_cannot_be_reached_exits_2_with_a_reason(self, tmp_path):
        result = subprocess.run(
            [sys.executable, "-m", "tenantry.cli", "worker"],
            env={"TENANTRY_DATABASE_URL": f"sqlite:///{tmp_path}/missing/folder/x.db", "PATH": ""},
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
        )
        assert result.returncode == 2
        assert result.stderr.startswith("error: database error")

    def test_the_worker_refreshes_and_stops_cleanly_on_sigterm(
        self, http, partner, database, data_server, spawn
    ):
        client_id = make_client(http, partner, "active")
        source_id = url_source(http, partner.headers, "", client_id, data_server.serve("/w.csv", "a\n1\n"))
        worker = spawn("worker", "--poll-seconds", "0.1")
        wait_for(lambda: refreshed(database, source_id) is not None, "the worker to refresh the source")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(WAIT_SECONDS) == 0
        assert data_server.hits == ["/w.csv"]


class TestServe:
    @pytest.mark.parametrize("processes", ["1", "2"])
    def test_serve_runs_the_worker_in_process_once_however_many_processes_serve(
        self, database, data_server, spawn, processes
    ):
        created = subprocess.run(
            [sys.executable, "-m", "tenantry.cli", "partner", "create", "P", "--admin-email", "a@p.test"],
            env={"TENANTRY_DATABASE_URL": database.url, "PATH": ""},
            capture_output=True,
            text=True,
            timeout=WAIT_SECONDS,
            check=True,
        )
        headers = {"Authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}
        port = free_port()
        server = spawn("serve", "--port", str(port), "--worker", "--workers", processes)
        base = f"http://127.0.0.1:{port}"

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, "the server to answer")
        with httpx.Client() as client:
            response = client.post(
                f"{base}/api/1/clients", json={"name": "C", "status": "setup"}, headers=headers
            )
            assert response.status_code == 201, response.text
            source_id = url_source(
                client, headers, base, response.json()["id"], data_server.serve("/s.csv", "a\n1\n")
            )
        # A Setup client's new source is loaded once (a queued refresh), by the in-process worker.
        wait_for(lambda: refreshed(database, source_id) is not None, "the in-process worker")
        server.send_signal(signal.SIGTERM)
        # uvicorn ends by re-raising the signal it handled; the worker had stopped before that.
        assert server.wait(WAIT_SECONDS) in (0, -signal.SIGTERM)
        log = server.log_path.read_text()
        assert log.count("worker started") == 1
        assert "worker stopped" in log
        assert log.count("Started server process") == int(processes)


def _children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def _parent_of(pid: int) -> int | None:
    """A live process's parent (None once it has ended, or is a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ...: the name may hold spaces, so split after its last ')'.
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else int(ppid)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a parent-death signal is Linux's")
def test_serving_processes_end_with_their_supervisor_even_when_it_is_killed_outright(spawn):
    """Killed with SIGKILL (as a supervisor that kills only the main pid does), `serve --workers 2`
    cannot stop its serving processes: they end by themselves, so a restart takes the port."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    supervisor = spawn("serve", "--port", str(port), "--workers", "2")
    wait_for(answers, "the server to answer")
    children = _children_of(supervisor.pid)
    assert len(children) >= 2, children
    try:
        supervisor.kill()
        supervisor.wait(WAIT_SECONDS)
        wait_for(lambda: all(_parent_of(pid) is None for pid in children), "the serving processes to end")
        restarted = spawn("serve", "--port", str(port), "--workers", "1")
        wait_for(answers, "the restarted server to answer")
        assert restarted.poll() is None
    finally:
        for pid in children:
            if _parent_of(pid) is not None:
                os.kill(pid, signal.SIGKILL)

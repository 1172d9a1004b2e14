"""Fixtures for the worker and webhook tests: a worker on the FakeClock and a real webhook receiver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from tenantry.mail import LogMailer, Mailer
from tenantry.outbound import Guard
from tenantry.worker import Worker
from tests.content import local_http_server

WAIT_SECONDS = 60


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll for something a real process does; never used to let fake time pass."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def spawn(database_url: str, tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start `tenantry ARGS...` against the test database; kill whatever is left at the end."""
    started: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        # The tests' data servers and receivers listen on loopback, closed by default.
        env = {**os.environ, "TENANTRY_DATABASE_URL": database_url, "TENANTRY_OUTBOUND_ALLOW": "127.0.0.1"}
        env.pop("TENANTRY_SMTP_HOST", None)
        path = tmp_path / f"process{len(started)}.log"
        log = path.open("wb")
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        process.log_path = path  # type: ignore[attr-defined]
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
    for log in logs:
        log.close()


@pytest.fixture
def make_worker(database, clock, settings):  # type: ignore[no-untyped-def]
    """A worker on the FakeClock; its guard lets it reach the tests' servers on 127.0.0.1."""

    def make(mailer: Mailer | None = None, **options: Any) -> Worker:
        options.setdefault("guard", Guard.from_settings(settings))
        return Worker(database, clock, mailer or LogMailer(), **options)

    return make


@pytest.fixture
def send_mail(make_worker, smtp_server):  # type: ignore[no-untyped-def]
    """Run the worker's e-mail step against the test SMTP server: requests only queue e-mails."""
    from tenantry.mail import SmtpMailer

    def send() -> int:
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
        return int(make_worker(mailer).run_mails())

    return send


@pytest.fixture
def worker(make_worker) -> Worker:  # type: ignore[no-untyped-def]
    return make_worker()


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw)


@dataclass
class Receiver:
    """A real webhook receiver on 127.0.0.1: it answers with the next status in `answers`."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.received.append(Received({k.lower(): v for k, v in self.headers.items()}, raw))
            status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        state.url = base + "/hook"
        yield state


@pytest.fixture
def guarded_http(settings, clock, database):  # type: ignore[no-untyped-def]
    """The app with the outgoing-request guard as it ships: no private destination allowed."""
    from fastapi.testclient import TestClient

    from tenantry.app import create_app

    shipped = settings.model_copy(update={"outbound_allow": ""})
    with TestClient(
        create_app(shipped, clock=clock, database=database), raise_server_exceptions=False
    ) as client:
        yield client

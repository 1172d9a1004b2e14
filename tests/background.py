"""Fixtures for the worker and webhook tests: a worker on the FakeClock and a real webhook receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tenantry.mail import LogMailer, Mailer
from tenantry.worker import Worker


@pytest.fixture
def make_worker(database, clock):  # type: ignore[no-untyped-def]
    def make(mailer: Mailer | None = None, **options: Any) -> Worker:
        return Worker(database, clock, mailer or LogMailer(), **options)

    return make


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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()

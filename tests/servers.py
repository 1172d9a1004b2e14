"""Real servers and processes for tests that need them: the app served by uvicorn on loopback (in a
thread, or as `tenantry serve` in its own process), the `tenantry` command, and small HTTP servers
on 127.0.0.1 (a data server whose answers a test sets, a webhook receiver). The fixtures that hand
these to tests are in `tests/conftest.py`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn

from tenantry.wire import OneWriteHttp

TENANTRY = str(Path(sys.executable).parent / "tenantry")
WAIT_SECONDS = 60


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_of(url: str) -> int:
    """The port of a URL of one of the tests' servers (`http://127.0.0.1:PORT/...`)."""
    port = urlsplit(url).port
    assert port is not None, url
    return port


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll for something a real process does; never used to let fake time pass."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def tenantry(
    *args: str, url: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The `tenantry` command as an operator runs it on `url` (with `env` added to the environment),
    with the usual umask (files 0644 unless made private)."""
    env = {**os.environ, "TENANTRY_DATABASE_URL": url, **(env or {})}
    return subprocess.run(
        [TENANTRY, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.umask(0o022),
    )


@contextmanager
def live_server(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port, in a thread of the test process with its
    own event loop, thread pool and connection pool, with the HTTP protocol `tenantry serve` uses
    (`tenantry.wire`), as `tenantry serve` runs the app; yield its
    base URL; stop it at the end. `config` goes to `uvicorn.Config` (e.g. `proxy_headers=False`)."""
    port = free_port()
    options = {"log_level": "warning", "log_config": None, "http": OneWriteHttp, **config}
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        assert thread.is_alive(), "the test server stopped while starting"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


@contextmanager
def served(database_url: str, redis_url: str | None, log_path: Any, *args: str, **env: str) -> Iterator[str]:
    """`tenantry serve` as its own process (as an operator runs it) on the test database; yield its
    base URL once `/healthz` answers; stop it at the end. Its log goes to `log_path`."""
    import httpx

    port = free_port()
    environment = dict(os.environ)
    environment.pop("TENANTRY_SMTP_HOST", None)  # none unless `env` names one
    environment.update({"TENANTRY_DATABASE_URL": database_url, **env})
    # The secret key it generates goes beside its log, not into the working directory.
    environment.setdefault("TENANTRY_DATA_DIR", os.path.dirname(os.path.abspath(log_path)))
    if redis_url:
        environment["TENANTRY_REDIS_URL"] = redis_url
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "serve", "--port", str(port), *args],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, "the server stopped while starting"
                try:
                    if httpx.get(url + "/healthz", timeout=5).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def local_http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class DataServer:
    """A real HTTP server on 127.0.0.1 whose answers a test sets per path, to a GET or a POST
    (`/stall` never answers until the test ends). It keeps the path of each request (`hits`) and
    the content type and body of each POST (`posted`)."""

    base: str = ""
    routes: dict[str, tuple[int, str, bytes, dict[str, str]]] = field(default_factory=dict)
    stall: threading.Event = field(default_factory=threading.Event)
    hits: list[str] = field(default_factory=list)
    posted: list[tuple[str, bytes]] = field(default_factory=list)

    def serve(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "text/csv",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> str:
        encoded = body.encode() if isinstance(body, str) else body
        self.routes[path] = (status, content_type, encoded, headers or {})
        return self.base + path


@contextmanager
def data_server_running() -> Iterator[DataServer]:
    state = DataServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            if self.path == "/stall":
                state.stall.wait(5)
                return
            self._answer()

        def do_POST(self) -> None:
            state.hits.append(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.posted.append((self.headers.get("Content-Type", ""), raw))
            self._answer()

        def _answer(self) -> None:
            status, content_type, body, headers = state.routes.get(
                self.path, (404, "text/plain", b"missing", {})
            )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    with local_http_server(Handler) as base:
        state.base = base
        try:
            yield state
        finally:
            state.stall.set()


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.raw)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """A real webhook receiver on 127.0.0.1: it answers with the next status in `answers`."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)


@contextmanager
def receiver_running() -> Iterator[Receiver]:
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

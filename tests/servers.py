"""A real server for tests that need one: uvicorn on loopback, in a thread of the test process,
with its own event loop, thread pool and connection pool, as `tenantry serve` runs the app."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def live_server(app: Any, **config: Any) -> Iterator[str]:
    """Serve `app` on a free loopback port; yield its base URL; stop it at the end."""
    port = free_port()
    options = {"log_level": "warning", "log_config": None, **config}
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
    import os
    import subprocess
    import sys

    import httpx

    port = free_port()
    environment = {**os.environ, "TENANTRY_DATABASE_URL": database_url, **env}
    environment.pop("TENANTRY_SMTP_HOST", None)
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

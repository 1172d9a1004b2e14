"""`tenantry serve`, run as a real process, counts guesses against the connection's address.

uvicorn believes `X-Forwarded-For` from 127.0.0.1 by default; `tenantry serve` must not, or a
guesser on the same machine as the server (or behind a local proxy) names a new address with
every request. Only `TENANTRY_TRUSTED_PROXIES` makes the header count.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import csrf_of
from tests.servers import TENANTRY, free_port


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start `tenantry serve` on a fresh SQLite database; answer its base URL once it listens."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_") and k != "FORWARDED_ALLOW_IPS"
    }
    env.update(TENANTRY_DATABASE_URL=f"sqlite:///{tmp_path / 'served.db'}", TENANTRY_DATA_DIR=str(tmp_path))
    upgraded = subprocess.run(
        [TENANTRY, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, timeout=120
    )
    assert upgraded.returncode == 0, upgraded.stderr

    def start(*args: str, **settings: str) -> str:
        port = free_port()
        process = subprocess.Popen(
            [TENANTRY, "serve", "--port", str(port), *args],
            env={**env, **settings},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "tenantry serve exited"
            assert time.monotonic() < deadline, "tenantry serve did not start"
            try:
                httpx.get(f"{base}/login", timeout=2)
                return base
            except httpx.TransportError:
                time.sleep(0.1)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=60)


def guesses_each_from_a_new_forwarded_address(base: str, emails: list[str]) -> list[int]:
    codes = []
    with httpx.Client(base_url=base, timeout=60) as browser:
        for n, email in enumerate(emails):
            form = {
                "email": email,
                "password": "wrong password",
                "csrf_token": csrf_of(browser.get("/login").text),
            }
            forwarded = {"X-Forwarded-For": f"203.0.113.{n + 1}"}
            codes.append(browser.post("/login", data=form, headers=forwarded).status_code)
    return codes


@pytest.mark.parametrize("worker", ["--worker", "--no-worker"])
def test_serve_counts_one_connections_guesses_together_whatever_x_forwarded_for_says(serve, worker):
    # 21 e-mails from one connection: the limit of 20 per address stops the last one.
    emails = [f"someone{n}@client.test" for n in range(21)]
    assert guesses_each_from_a_new_forwarded_address(serve(worker), emails) == [401] * 20 + [429]


def test_serve_believes_x_forwarded_for_from_a_trusted_proxy(serve):
    base = serve("--no-worker", TENANTRY_TRUSTED_PROXIES="127.0.0.1/32")
    # Six guesses at one e-mail, each from another address behind the proxy: no pair reaches five.
    assert guesses_each_from_a_new_forwarded_address(base, ["someone@client.test"] * 6) == [401] * 6

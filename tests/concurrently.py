"""Requests sent several at once to a real server on loopback: on PostgreSQL (READ COMMITTED) the
answers must be those SQLite gives, where each write request is alone."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.content import create_dashboard, inline_source
from tests.factories import add_user, new_client

THREADS = 8
ROUNDS = 6


def at_once(
    server_url: str,
    headers_of: Callable[[int], dict[str, str]],
    call: Callable[[httpx.Client, int, int], httpx.Response],
    *,
    threads: int = THREADS,
    rounds: int = ROUNDS,
    before: Callable[[], None] | None = None,
    after: Callable[[], None] | None = None,
) -> list[httpx.Response]:
    """`rounds` times, `threads` requests released together (a barrier) against the live server;
    `before` and `after` run alone around each round."""
    answers: list[httpx.Response] = []
    for round_ in range(rounds):
        if before is not None:
            before()
        barrier = threading.Barrier(threads)

        def one(i: int, round_: int = round_, barrier: threading.Barrier = barrier) -> httpx.Response:
            with httpx.Client(base_url=server_url, headers=headers_of(i), timeout=60) as client:
                barrier.wait()
                return call(client, round_, i)

        with ThreadPoolExecutor(threads) as pool:
            answers.extend(pool.map(one, range(threads)))
        if after is not None:
            after()
    return answers


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


@pytest.fixture
def built(server_url, partner) -> dict[str, Any]:
    """A Trial client with three users, an inline source and a dashboard of five klips."""
    with httpx.Client(base_url=server_url, headers=partner.headers, timeout=60) as http:
        client_id = new_client(http, partner, "trial", dashboards=5, users=5)
        users = [add_user(http, partner, client_id, f"u{i}@client.test")["id"] for i in range(3)]
        source_id = inline_source(http, partner, client_id)
        created = create_dashboard(http, partner, client_id, source_id)
        assert created.status_code == 201, created.text
    return {
        "client_id": client_id,
        "users": users,
        "source_id": source_id,
        "dashboard_id": created.json()["id"],
    }

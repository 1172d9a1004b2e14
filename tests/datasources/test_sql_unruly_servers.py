"""Database servers that do not play along: one that never answers, and a PostgreSQL server that
signs us in and then keeps quiet about the query. A fetch still ends at its deadline (a second of
grace after it), whatever the server does."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tenantry.datasources.fetch import FetchError
from tenantry.datasources.request import SourceRequest
from tenantry.datasources.sql import fetch_sql
from tenantry.outbound import AllowList, Guard
from tests.content import make_client

LOOPBACK_ALLOWED = Guard(AllowList.parse("127.0.0.1"))


def _serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []

    def run() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()
        for conn in held:
            conn.close()


def _silent(conn: socket.socket) -> None:
    """Accept, then say nothing at all."""


def _read_message(conn: socket.socket) -> bytes:
    (length,) = struct.unpack("!i", _read_exactly(conn, 4))
    return _read_exactly(conn, length - 4)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError
        data += chunk
    return data


def _quiet_postgresql(conn: socket.socket) -> None:
    """Speak PostgreSQL's protocol far enough to sign the client in, then never answer a query."""
    try:
        message = _read_message(conn)
        while struct.unpack("!i", message[:4])[0] in (80877103, 80877104):  # SSL, GSS encryption
            conn.sendall(b"N")
            message = _read_message(conn)

        def send(kind: bytes, body: bytes) -> None:
            conn.sendall(kind + struct.pack("!i", len(body) + 4) + body)

        send(b"R", struct.pack("!i", 0))  # authentication ok
        for name, value in (
            (b"server_version", b"16.0"),
            (b"client_encoding", b"UTF8"),
            (b"standard_conforming_strings", b"on"),
            (b"DateStyle", b"ISO, MDY"),
            (b"integer_datetimes", b"on"),
        ):
            send(b"S", name + b"\0" + value + b"\0")
        send(b"K", struct.pack("!ii", 1, 2))
        send(b"Z", b"I")  # ready for query
        while conn.recv(65536):
            pass  # every query is read and never answered
    except OSError:
        pass


@pytest.fixture
def silent_port() -> Iterator[int]:
    yield from _serve(_silent)


@pytest.fixture
def quiet_postgresql_port() -> Iterator[int]:
    yield from _serve(_quiet_postgresql)


def _request(engine: str, port: int) -> SourceRequest:
    sql = {
        "engine": engine,
        "host": "127.0.0.1",
        "port": port,
        "database": "shop",
        "username": "reader",
        "password": "s3cret-password",
        "query": "SELECT 1",
    }
    return SourceRequest(kind="sql", url=None, format=None, sql=sql)


@pytest.mark.parametrize("engine", ["postgresql", "mysql"])
def test_a_server_that_never_answers_times_out_within_the_deadline(engine: str, silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"^timed out$"):
        fetch_sql(_request(engine, silent_port), guard=LOOPBACK_ALLOWED, timeout=1)
    # libpq counts its connect timeout in whole seconds, 2 at the least.
    assert time.monotonic() - started < 3.5


def test_a_server_that_keeps_quiet_about_the_query_is_cut_off_after_the_deadline(
    quiet_postgresql_port: int,
) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        fetch_sql(_request("postgresql", quiet_postgresql_port), guard=LOOPBACK_ALLOWED, timeout=1)
    assert str(caught.value) == "The query ran longer than 1 second."
    assert time.monotonic() - started < 3.5


# What a server on an allowed address says first in place of MySQL's greeting: a packet of zero
# bytes (an empty server version), and a greeting cut short after its version.
GARBLED_GREETINGS = {
    "zeros": b"\x20\x00\x00\x00" + b"\x00" * 32,
    "cut_short": b"\x10\x00\x00\x00\x0a5.5\x00\x01\x00\x00\x00abcdefgh",
}


@pytest.fixture(params=sorted(GARBLED_GREETINGS))
def garbled_mysql_port(request: pytest.FixtureRequest) -> Iterator[int]:
    greeting = GARBLED_GREETINGS[request.param]

    def greet(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(greeting)
            conn.settimeout(2)
            conn.recv(1024)

    yield from _serve(greet)


def test_a_server_whose_greeting_is_not_mysqls_reads_could_not_connect(garbled_mysql_port: int) -> None:
    with pytest.raises(FetchError, match=r"^could not connect$"):
        fetch_sql(_request("mysql", garbled_mysql_port), guard=LOOPBACK_ALLOWED, timeout=3)


def test_a_refresh_against_a_garbled_server_records_could_not_connect(  # type: ignore[no-untyped-def]
    http, partner, worker, garbled_mysql_port: int
) -> None:
    # Recorded like any failed refresh, not a crash the worker would take up again at every lease.
    client_id = make_client(http, partner, "active")
    body = {"name": "Shop", "kind": "sql", **(_request("mysql", garbled_mysql_port).sql or {})}
    created = http.post(f"/api/1/clients/{client_id}/datasources", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text

    worker.run_once()

    source = http.get(f"/api/1/datasources/{created.json()['id']}", headers=partner.headers).json()
    assert (source["last_error"], source["refresh_fail_count"]) == ("could not connect", 1)
    assert source["refresh_requested_at"] is None

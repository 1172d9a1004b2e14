"""Answers leave the server in one write each (`tenantry.wire`), whole and in order, on a real
uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from uvicorn.protocols.http import httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tenantry.wire import OneWriteHttp
from tests.servers import live_server, port_of

BIG = bytes(range(256)) * 32_768  # 8 MiB: far more than the socket's buffers


async def small(request: Request) -> Response:
    return JSONResponse({"status": "ok", "path": request.url.path})


async def big(request: Request) -> Response:
    return Response(BIG, media_type="application/octet-stream")


async def streamed(request: Request) -> Response:
    async def pieces() -> AsyncIterator[bytes]:
        for n in range(5):
            yield f"piece {n};".encode()
            await asyncio.sleep(0.01)

    return StreamingResponse(pieces(), media_type="text/plain")


async def streamed_big(request: Request) -> Response:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(BIG), 131_072):
            yield BIG[start : start + 131_072]

    return StreamingResponse(pieces(), media_type="application/octet-stream")


APP = Starlette(
    routes=[
        Route("/small", small),
        Route("/big", big),
        Route("/streamed", streamed),
        Route("/streamed-big", streamed_big),
    ]
)

# Every write that reached a connection's real transport, as its length, for every connection.
WRITES: list[int] = []


class _Recording:
    """A connection's real transport, noting the length of each write before making it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(len(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordedOneWrite(OneWriteHttp):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport))  # type: ignore[arg-type]


class RecordedUvicorn(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recording(transport))  # type: ignore[arg-type]


@pytest.fixture
def one_write() -> Iterator[str]:
    WRITES.clear()
    with live_server(APP, http=RecordedOneWrite) as url:
        yield url


def raw_exchange(url: str, request: bytes) -> bytes:
    """Send `request` as it is on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port_of(url)), timeout=20) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65_536):
            received += chunk
    return received


def test_a_plain_answer_is_written_to_the_socket_once_headers_and_body_together(one_write: str) -> None:
    with httpx.Client(base_url=one_write) as http:
        for _ in range(3):  # on one kept-alive connection
            answer = http.get("/small")
            assert answer.json() == {"status": "ok", "path": "/small"}
    assert len(WRITES) == 3
    assert all(size > len(answer.content) for size in WRITES)  # each holds its headers and its body


def test_uvicorn_on_its_own_writes_the_same_answers_in_two_pieces() -> None:
    """The contrast the one-write transport exists for."""
    WRITES.clear()
    with live_server(APP, http=RecordedUvicorn) as url, httpx.Client(base_url=url) as http:
        for _ in range(3):
            assert http.get("/small").status_code == 200
    assert len(WRITES) == 6


@pytest.mark.parametrize("path", ["/big", "/streamed-big"])
def test_an_answer_larger_than_the_socket_buffers_arrives_whole_to_a_slow_reader(
    one_write: str, path: str
) -> None:
    with socket.create_connection(("127.0.0.1", port_of(one_write)), timeout=20) as connection:
        connection.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        received = bytearray(connection.recv(4096))
        time.sleep(0.3)  # the server's side fills up and waits for this reader
        while chunk := connection.recv(65_536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if path == "/big":
        assert f"content-length: {len(BIG)}".encode() in head.lower()
    else:  # chunked: take the chunks' framing off
        assert b"transfer-encoding: chunked" in head.lower()
        body = dechunked(body)
    assert body == BIG


def dechunked(framed: bytes) -> bytes:
    out, rest = bytearray(), framed
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return bytes(out)
        out += rest[:size]
        rest = rest[size + 2 :]


def test_a_streamed_answer_arrives_piece_after_piece_in_order(one_write: str) -> None:
    with httpx.Client(base_url=one_write) as http, http.stream("GET", "/streamed") as answer:
        assert answer.status_code == 200
        assert answer.read() == b"".join(f"piece {n};".encode() for n in range(5))
    # Pieces sent a step apart leave a step apart: streaming is not held back until the end.
    assert len(WRITES) > 2


def test_an_answer_to_a_connection_that_asked_to_close_is_complete_before_the_close(
    one_write: str,
) -> None:
    received = raw_exchange(one_write, b"GET /small HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in head.lower()
    assert body == b'{"status":"ok","path":"/small"}'


def test_a_malformed_request_still_gets_its_400_before_the_connection_closes(one_write: str) -> None:
    received = raw_exchange(one_write, b"NOT A REQUEST\r\n\r\n")
    assert received.startswith(b"HTTP/1.1 400")
    assert received.endswith(b"Invalid HTTP request received.")


def test_a_head_request_gets_the_headers_alone(one_write: str) -> None:
    with httpx.Client(base_url=one_write) as http:
        answer = http.head("/small")
        assert answer.status_code == 200
        assert answer.content == b""
        assert http.get("/small").json()["status"] == "ok"  # the connection goes on


def test_at_a_level_above_info_no_access_line_is_worked_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn works out an answer's access line (the client's address, the quoted path) before
    its logger's level drops it; with the access log below the level, a connection skips it."""
    worked_out: list[str] = []
    client_address = httptools_impl.get_client_addr

    def noted(scope: Any) -> str:
        worked_out.append(scope["path"])
        return client_address(scope)

    monkeypatch.setattr(httptools_impl, "get_client_addr", noted)
    caplog.set_level(logging.WARNING, logger="uvicorn.access")  # a handler on the root logger, as ours
    with live_server(APP, log_level="warning") as url, httpx.Client(base_url=url) as http:
        assert http.get("/small").status_code == 200
    assert worked_out == []
    with (
        live_server(APP, http=HttpToolsProtocol, log_level="warning") as url,
        httpx.Client(base_url=url) as http,
    ):
        assert http.get("/small").status_code == 200
    assert worked_out == ["/small"]  # the contrast: uvicorn's own protocol works it out, then drops it


def test_at_info_each_answer_still_has_its_access_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with live_server(APP, log_level="info") as url, httpx.Client(base_url=url) as http:
        assert http.get("/small", params={"q": "1"}).status_code == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert any('"GET /small?q=1 HTTP/1.1" 200' in line for line in lines), lines

"""How answers leave the process: uvicorn's HTTP protocol, writing each answer in one piece.

uvicorn writes an answer's status line and headers, then its body, as two writes to the socket: two
system calls and two TCP segments for every answer. `OneWriteHttp` is uvicorn's own protocol (httptools)
on a transport that holds what is written until the running step of the event loop ends, then
writes it at once. A plain answer (its start and its body sent in one step) leaves as one write.
A streamed one (a download, an export) still leaves piece by piece, each piece one step later at
most, and flow control is the socket's own as before: the real transport pauses and resumes the
protocol.

Measured with wrk on loopback (2-core machine, one process, two servers side by side in
alternating rounds, median of 8): `GET /api/1/clients/{id}` answered 1.19 to 1.33 times as many
requests a second on SQLite and 1.15 times on PostgreSQL + Redis; `GET /api/1/me` 1.11 times and a
published page 1.19 times on SQLite; the hello-world FastAPI app 1.2 times. `tenantry serve` uses
it in every mode, `bench/floor.py` serves its hello-world floor with it too, and so do the tests'
live servers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class OneWriteTransport:
    """A connection's transport whose writes within one step of the event loop become one write.
    Everything but writing and closing goes to the real transport."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = [data]
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def flush(self) -> None:
        """Write what is held now (at the end of the step it was written in)."""
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        # What was written before closing still goes, first.
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, writing through a `OneWriteTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held: Any = OneWriteTransport(transport, asyncio.get_running_loop())
        super().connection_made(held)
        # uvicorn writes an access line for each answer whenever its access logger has a handler
        # (ours is the root logger's), and works out the line's client address and quoted path
        # before the logger's level drops it. At a level above INFO (`TENANTRY_LOG_LEVEL=WARNING`)
        # this connection's answers skip that. Decided for each connection: a new level applies to
        # the connections made after it.
        self.access_log = self.access_log and self.access_logger.isEnabledFor(logging.INFO)


# What `tenantry serve` (and everything that serves the app as it does) gives `uvicorn.Config`.
SERVER_OPTIONS: dict[str, Any] = {"http": OneWriteHttp, "log_config": None, "proxy_headers": False}

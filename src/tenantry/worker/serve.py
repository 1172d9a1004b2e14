"""The web app with the worker beside it in one process (the SQLite default of `tenantry serve`)."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
import threading
from types import FrameType

import uvicorn
from fastapi import FastAPI

from tenantry.wire import SERVER_OPTIONS
from tenantry.worker.loop import Worker

STOP_TIMEOUT_SECONDS = 60.0
# The supervisor's pid, as its serving processes are told it (they inherit its environment).
SUPERVISOR_PID = "TENANTRY_SUPERVISOR_PID"
_PR_SET_PDEATHSIG = 1


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT once it has shut down, which ends the process at once:
    so the worker is told to stop with the server, and waited for before shutdown completes."""

    def __init__(self, config: uvicorn.Config, worker: Worker, thread: threading.Thread) -> None:
        super().__init__(config)
        self.worker, self.thread = worker, thread

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.worker.stop()
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        self.worker.stop()
        await asyncio.to_thread(self.thread.join, STOP_TIMEOUT_SECONDS)


def serve_in_process(app: FastAPI, sock: socket.socket, worker: Worker | None) -> None:
    """One process serving requests on `sock` (see `listening_socket`), with the worker, when there
    is one, in a thread beside it: started only now that the address is known to be ours."""
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, host=host, port=port, **SERVER_OPTIONS)
    if worker is None:
        uvicorn.Server(config).run(sockets=[sock])
        return
    thread = threading.Thread(target=worker.run, name="tenantry-worker", daemon=True)
    thread.start()
    _Server(config, worker, thread).run(sockets=[sock])


def end_with_supervisor() -> None:
    """In one of the supervisor's serving processes (`app.serving_app`), on Linux: SIGTERM this
    process (a clean shutdown) when the supervisor's thread that started it ends, however it ends;
    uvicorn starts every serving process from its main thread. Killed outright (SIGKILL), the
    supervisor cannot stop them, and they would go on holding the port and answering /healthz with
    no worker running, so that a restart could not serve."""
    supervisor = os.environ.get(SUPERVISOR_PID)
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return
    if str(os.getppid()) != supervisor:  # it ended before it could be watched
        os.kill(os.getpid(), signal.SIGTERM)


def supervise_with_worker(config: uvicorn.Config, sock: socket.socket, worker: Worker | None) -> None:
    """Several processes serving requests on `sock` (uvicorn's supervisor; see `listening_socket`),
    and the worker, when there is one, in a thread of the supervisor itself: it runs once however
    many processes serve. The serving processes end with the supervisor (`end_with_supervisor`)."""
    from uvicorn.supervisors import Multiprocess

    os.environ[SUPERVISOR_PID] = str(os.getpid())

    thread = None
    if worker is not None:
        thread = threading.Thread(target=worker.run, name="tenantry-worker", daemon=True)
        thread.start()
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        if worker is not None and thread is not None:
            worker.stop()
            thread.join(STOP_TIMEOUT_SECONDS)


class CannotListen(Exception):
    """The address `tenantry serve` was given cannot be listened on; the message is one line."""


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the serving processes share, bound before anything else starts: an address that
    is taken or does not resolve then ends `tenantry serve` (`CannotListen`) before the worker has
    written an event or sent an e-mail, or a serving process has started.

    Made here, not by uvicorn: its socket is made without naming the protocol, and then asyncio
    does not set TCP_NODELAY on the connections it accepts, so every answer written in two parts
    waits ~40 ms for the client's delayed ACK."""
    import structlog

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:  # also a host that does not resolve (socket.gaierror)
        sock.close()
        reason = exc.strerror or str(exc)
        raise CannotListen(f"cannot listen on {shown}:{port}: {reason[:1].lower()}{reason[1:]}") from exc
    except (TypeError, ValueError) as exc:  # a name IDNA cannot encode, which Python raises as either
        sock.close()
        raise CannotListen(f"cannot listen on {shown}:{port}: not a valid host name") from exc
    sock.set_inheritable(True)
    structlog.get_logger("tenantry.serve").info(f"serving on http://{shown}:{port}")
    return sock

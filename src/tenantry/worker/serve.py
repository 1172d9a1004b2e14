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


def serve_with_worker(app: FastAPI, host: str, port: int, worker: Worker) -> None:
    thread = threading.Thread(target=worker.run, name="tenantry-worker", daemon=True)
    thread.start()
    config = uvicorn.Config(app, host=host, port=port, **SERVER_OPTIONS)
    _Server(config, worker, thread).run()


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


def supervise_with_worker(config: uvicorn.Config, worker: Worker | None) -> None:
    """Several processes serving requests (uvicorn's supervisor), and the worker, when there is
    one, in a thread of the supervisor itself: it runs once however many processes serve. The
    serving processes end with the supervisor (`end_with_supervisor`)."""
    from uvicorn.supervisors import Multiprocess

    os.environ[SUPERVISOR_PID] = str(os.getpid())

    thread = None
    if worker is not None:
        thread = threading.Thread(target=worker.run, name="tenantry-worker", daemon=True)
        thread.start()
    try:
        Multiprocess(config, sockets=[listening_socket(config.host, config.port)]).run()
    except KeyboardInterrupt:
        pass
    finally:
        if worker is not None and thread is not None:
            worker.stop()
            thread.join(STOP_TIMEOUT_SECONDS)


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the processes share. Made here, not by uvicorn: its socket is made without naming
    the protocol, and then asyncio does not set TCP_NODELAY on the connections it accepts, so every
    answer written in two parts waits ~40 ms for the client's delayed ACK."""
    import structlog

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    structlog.get_logger("tenantry.serve").info(f"serving on http://{shown}:{port}")
    return sock

"""SMTP servers for the e-mail tests, on loopback: a real one (aiosmtpd) that collects what it
receives and answers MAIL FROM and RCPT TO as a test says (with a size limit if one is given), and
a silent one that accepts connections and never says a word. The fixtures (`smtp_server`,
`silent_smtp`) are in `tests/conftest.py`."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

from tenantry.mail import SmtpMailer
from tests.servers import free_port

# aiosmtpd logs every connection's steps at INFO: the test server's chatter, not the app's.
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class SmtpServer:
    """A real SMTP server on loopback and what it received."""

    host: str
    port: int
    # What MAIL FROM answers, in turn (then "250 OK"); e.g. "550 5.7.1 Sender not allowed".
    mail_answers: list[str] = field(default_factory=list)
    # What RCPT TO answers, in turn (then "250 OK"); e.g. "550 5.1.1 No such user here".
    rcpt_answers: list[str] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[list[str]] = field(default_factory=list)  # the accepted recipients of each message
    greetings: int = 0  # EHLOs: one per connection
    _open: list[Any] = field(default_factory=list)  # (loop, transport) of each greeted connection

    def drop_connections(self) -> None:
        """Close every connection from the server's side, as a server does to idle clients."""
        for loop, transport in self._open:
            loop.call_soon_threadsafe(transport.close)
        self._open.clear()

    @property
    def mailer(self) -> SmtpMailer:
        return SmtpMailer(self.host, self.port, "tenantry@example.test")


@contextmanager
def smtp_server_running(size_limit: int | None = None) -> Iterator[SmtpServer]:
    """The server; with `size_limit`, it announces SIZE and refuses a bigger message (552), as
    aiosmtpd does on its own."""
    from aiosmtpd.controller import Controller

    state = SmtpServer("127.0.0.1", free_port())

    class Handler:
        async def handle_EHLO(
            self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
        ) -> list[str]:
            import asyncio

            state.greetings += 1
            state._open.append((asyncio.get_running_loop(), server.transport))
            session.host_name = hostname
            return responses

        async def handle_MAIL(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            answer = state.mail_answers.pop(0) if state.mail_answers else "250 OK"
            if answer.startswith("2"):
                envelope.mail_from = address
                envelope.mail_options.extend(options)
            return answer

        async def handle_RCPT(
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            answer = state.rcpt_answers.pop(0) if state.rcpt_answers else "250 OK"
            if answer.startswith("2"):
                envelope.rcpt_tos.append(address)
            return answer

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            state.envelopes.append(list(envelope.rcpt_tos))
            state.messages.append(message_from_bytes(envelope.content, policy=default_policy))  # type: ignore[arg-type]
            return "250 OK"

    limit = {} if size_limit is None else {"data_size_limit": size_limit}
    controller = Controller(Handler(), hostname=state.host, port=state.port, **limit)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


class SilentSmtp:
    """An SMTP server that accepts connections and never says a word, until `hang_up()`."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)
        self.host, self.port = self.listener.getsockname()
        self.accepted: list[socket.socket] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def mailer(self) -> SmtpMailer:
        return SmtpMailer(self.host, self.port, "t@example.test")

    def _accept(self) -> None:
        while not self.done.is_set():
            try:
                self.accepted.append(self.listener.accept()[0])
            except OSError:
                continue

    def hang_up(self) -> None:
        self.done.set()
        self.thread.join()
        for conn in self.accepted:
            conn.close()
        self.listener.close()

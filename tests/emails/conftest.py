"""A real SMTP server whose answers a test sets, and the app and worker that use it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tenantry.app import create_app
from tenantry.mail import SmtpMailer
from tests.background import make_worker  # noqa: F401


@dataclass
class Smtp:
    host: str
    port: int
    # What RCPT TO answers, in turn (then "250 OK"); e.g. "550 5.1.1 No such user here".
    rcpt_answers: list[str] = field(default_factory=list)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[list[str]] = field(default_factory=list)

    @property
    def mailer(self) -> SmtpMailer:
        return SmtpMailer(self.host, self.port, "tenantry@example.test")


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = Smtp("127.0.0.1", port)

    class Handler:
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

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield state
    finally:
        controller.stop()


@pytest.fixture
def smtp_http(settings, clock, database, smtp) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(settings, clock=clock, database=database, mailer=smtp.mailer)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client

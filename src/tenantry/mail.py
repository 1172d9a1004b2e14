"""The Mailer port: SMTP when configured, the log otherwise — never a silent drop.

Chosen once from settings (`mailer_from_settings`). Callers get a `Delivery` back and pass its
`delivered`/`reason` on to the API (`202 {"delivered": false, "reason": ...}` without SMTP).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import structlog

from tenantry.settings import Settings

log = structlog.get_logger(__name__)

SMTP_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    reason: str | None = None


class Mailer(Protocol):
    def send(self, mail: Mail) -> Delivery: ...


def build_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    for attachment in mail.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls = username, password, starttls

    def send(self, mail: Mail) -> Delivery:
        """Send synchronously (callers run in worker threads, never on the event loop)."""
        message = build_message(mail, self.sender)
        try:
            asyncio.run(
                aiosmtplib.send(
                    message,
                    hostname=self.host,
                    port=self.port,
                    username=self.username,
                    password=self.password,
                    start_tls=self.starttls,
                    timeout=SMTP_TIMEOUT_SECONDS,
                )
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            log.warning("mail not delivered", to=mail.to, subject=mail.subject, error=str(exc))
            return Delivery(False, f"the SMTP server refused or could not be reached: {exc}")
        log.info("mail sent", to=mail.to, subject=mail.subject)
        return Delivery(True)


class LogMailer:
    """Without SMTP settings every message is written to the log, and the caller is told so."""

    REASON = "no SMTP server is configured (TENANTRY_SMTP_HOST); the message was written to the log"

    def send(self, mail: Mail) -> Delivery:
        log.warning(
            "mail not sent: no SMTP server configured",
            to=mail.to,
            subject=mail.subject,
            text=mail.text,
            attachments=[a.filename for a in mail.attachments],
        )
        return Delivery(False, self.REASON)


def mailer_from_settings(settings: Settings) -> Mailer:
    if not settings.smtp_host:
        return LogMailer()
    return SmtpMailer(
        settings.smtp_host,
        settings.smtp_port,
        settings.mail_from,
        username=settings.smtp_user,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )

"""The Mailer port: SMTP when configured, the log otherwise — never a silent drop.

Chosen once from settings (`mailer_from_settings`). Requests do not send: they write an e-mail
to the outbox (`tenantry.emails`), and the worker sends it after commit. Without SMTP settings a
request writes the message to the log at once and says so (`queued: false`, `delivered: false`
and the reason), as there is nothing to queue for.

The SMTP server is the operator's own configuration, not user input: it does not go through the
outgoing-request guard. A conversation with it ends after 30 seconds in total.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from typing import Protocol

import aiosmtplib
import structlog

from tenantry.settings import Settings

log = structlog.get_logger(__name__)

# The whole SMTP conversation, connect to QUIT (SPEC §12 "Deadlines are totals").
SMTP_DEADLINE_SECONDS = 30.0

# What a caller is told; the details go to the log only (they may name the server, its answers).
UNREACHABLE = "The mail server could not be reached or did not answer in time."
REFUSED = "The mail server refused the message."
DEFERRED = "The mail server did not take the message for now."
UNBUILDABLE = "The message could not be built."

# Control characters (C0, C1, DEL) and the Unicode line and paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Links that carry a one-time secret: their token never reaches the log.
_SECRET_LINK = re.compile(r"(/(?:invite|reset)/)[A-Za-z0-9_\-]+")


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    # Not in the repr (a traceback may show a message): an invitation's text holds its link.
    text: str = field(repr=False)
    html: str | None = field(default=None, repr=False)
    attachments: list[Attachment] = field(default_factory=list, repr=False)
    # The display name before the operator's sender address (a partner's `email_from_name`).
    from_name: str | None = None


@dataclass(frozen=True)
class Delivery:
    delivered: bool
    reason: str | None = None
    # Trying again cannot help: a recipient refused with a 5xx answer, a header that cannot be built.
    permanent: bool = False


class Mailer(Protocol):
    # Whether `send` really hands messages to a mail server (False: it writes them to the log).
    delivers: bool

    def send(self, mail: Mail, *, timeout: float = SMTP_DEADLINE_SECONDS) -> Delivery: ...


def one_line(text: str) -> str:
    """A header value on one line: control characters and line separators become spaces."""
    return _CONTROL.sub(" ", text).strip()


def redact_secrets(text: str) -> str:
    """The text with the token of every invitation or reset link replaced."""
    return _SECRET_LINK.sub(r"\1[redacted]", text)


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The message; ValueError when a header cannot be built (a recipient with a line break)."""
    message = EmailMessage()
    if mail.from_name:
        # The operator's address with the partner's name (a name in `mail_from` is replaced).
        message["From"] = formataddr((one_line(mail.from_name), parseaddr(sender)[1]))
    else:
        message["From"] = sender
    message["To"] = ", ".join(mail.to)
    # Defence in depth: whatever a name holds, the subject stays one header line.
    message["Subject"] = one_line(mail.subject)
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    for attachment in mail.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=one_line(attachment.filename)
        )
    return message


def _refusal_is_permanent(exc: aiosmtplib.SMTPException) -> bool:
    """A recipient refused with a 5xx answer, or the message refused at DATA with one, will be
    refused again: give up at once. Anything else (4xx, the server gone) may mend."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError):
        return exc.code >= 500
    return False


class SmtpMailer:
    delivers = True

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

    def send(self, mail: Mail, *, timeout: float = SMTP_DEADLINE_SECONDS) -> Delivery:
        """Send synchronously (the worker runs it on a thread of its own), `timeout` seconds in
        total whatever the server drips."""
        try:
            message = build_message(mail, self.sender)
        except (ValueError, TypeError) as exc:
            log.warning("mail not built", recipients=len(mail.to), error_type=type(exc).__name__)
            return Delivery(False, UNBUILDABLE, permanent=True)
        try:
            refused, _ = asyncio.run(self._send(message, timeout))
        except aiosmtplib.SMTPResponseException as exc:
            permanent = _refusal_is_permanent(exc)
            self._failed(mail, exc, permanent)
            return Delivery(False, REFUSED if exc.code >= 500 else DEFERRED, permanent=permanent)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            permanent = _refusal_is_permanent(exc)
            self._failed(mail, exc, permanent)
            return Delivery(False, REFUSED if permanent else DEFERRED, permanent=permanent)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._failed(mail, exc, False)
            return Delivery(False, UNREACHABLE)
        log.info("mail sent", to=mail.to, subject=one_line(mail.subject), refused=sorted(refused))
        return Delivery(True)

    async def _send(
        self, message: EmailMessage, timeout: float
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        # `timeout` of aiosmtplib bounds each step; `wait_for` bounds them all together.
        return await asyncio.wait_for(
            aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                start_tls=self.starttls,
                timeout=timeout,
            ),
            timeout,
        )

    def _failed(self, mail: Mail, exc: BaseException, permanent: bool) -> None:
        log.warning(
            "mail not delivered",
            to=mail.to,
            subject=one_line(mail.subject),
            permanent=permanent,
            error_type=type(exc).__name__,
            error=str(exc) or type(exc).__name__,
        )


class LogMailer:
    """Without SMTP settings every message is written to the log, and the caller is told so.
    The token of an invitation link is not written."""

    REASON = "no SMTP server is configured (TENANTRY_SMTP_HOST); the message was written to the log"
    delivers = False

    def send(self, mail: Mail, *, timeout: float = SMTP_DEADLINE_SECONDS) -> Delivery:
        log.warning(
            "mail not sent: no SMTP server configured",
            to=mail.to,
            subject=one_line(mail.subject),
            text=redact_secrets(mail.text),
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

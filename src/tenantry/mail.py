"""The Mailer port: SMTP when configured, the log otherwise — never a silent drop.

Chosen once from settings (`mailer_from_settings`). Requests do not send: they write an e-mail
to the outbox (`tenantry.emails`), and the worker sends it after commit. Without SMTP settings a
request writes the message to the log at once and says so (`queued: false`, `delivered: false`
and the reason), as there is nothing to queue for.

The SMTP server is the operator's own configuration, not user input: it does not go through the
outgoing-request guard. A conversation with it ends after 30 seconds in total. A connection is
kept for the next message (no new handshake, STARTTLS and login per message) while messages keep
coming: for 10 seconds after its last one and 100 messages at most; the worker closes the ones
it keeps when it stops.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Protocol

import aiosmtplib
import structlog

from tenantry.settings import Settings

log = structlog.get_logger(__name__)

# The whole SMTP conversation, connect to QUIT (SPEC §12 "Deadlines are totals").
SMTP_DEADLINE_SECONDS = 30.0
# A connection is kept for the next message this long after its last one, and for this many.
SMTP_IDLE_SECONDS = 10.0
SMTP_MESSAGES_PER_CONNECTION = 100

# What a caller is told; the details go to the log only (they may name the server, its answers).
UNREACHABLE = "The mail server could not be reached or did not answer in time."
REFUSED = "The mail server refused the message."
TOO_LARGE = "The message is larger than the mail server accepts."
DEFERRED = "The mail server did not take the message for now."
UNBUILDABLE = "The message could not be built."
# SMTP's answer to a message over the server's size limit (RFC 1870: at MAIL FROM, or at DATA).
_TOO_LARGE = 552

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

    def close(self) -> None:
        """Close what is kept open between messages (connections to the server)."""


def refused_some(refused: int, recipients: int) -> str:
    """What a delivered message records when the server refused some of its recipients."""
    return f"The mail server refused {refused} of the {recipients} recipients; the others were sent it."


def one_line(text: str) -> str:
    """A header value on one line: control characters and line separators become spaces."""
    return _CONTROL.sub(" ", text).strip()


def redact_secrets(text: str) -> str:
    """The text with the token of every invitation or reset link replaced."""
    return _SECRET_LINK.sub(r"\1[redacted]", text)


def build_message(mail: Mail, sender: str) -> EmailMessage:
    """The message; an error when a header cannot be built (a recipient with a line break, or
    one the standard library's header parser cannot take)."""
    message = EmailMessage()
    if mail.from_name:
        # The operator's address with the partner's name (a name in `mail_from` is replaced). Given
        # as an Address, the name is quoted or encoded as a name: written as text, an encoded name
        # holding `<…>` or a comma was parsed back into addresses, and replaced the sender.
        message["From"] = Address(display_name=one_line(mail.from_name), addr_spec=parseaddr(sender)[1])
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
    """A 5xx answer to the sender (`MAIL FROM`: a message over the size limit, a sender the server
    will not relay for), to a recipient or to the message (`DATA`) will be given again: give up at
    once (SMTP's 5yz answers are permanent, RFC 5321 §4.2.1). Anything else (4xx, the server gone)
    may mend."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(
        exc, aiosmtplib.SMTPSenderRefused | aiosmtplib.SMTPRecipientRefused | aiosmtplib.SMTPDataError
    ):
        return exc.code >= 500
    return False


def _refusal_reason(exc: aiosmtplib.SMTPResponseException) -> str:
    if exc.code == _TOO_LARGE:
        return TOO_LARGE
    return REFUSED if exc.code >= 500 else DEFERRED


class _Connection:
    """One SMTP connection kept between messages, with the event loop it lives on (each message
    runs that loop on the sending thread; one thread at a time holds the connection)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.client: aiosmtplib.SMTP | None = None
        self.used_at = 0.0  # time.monotonic() of its last message
        self.sent = 0

    @property
    def reusable(self) -> bool:
        return (
            self.client is not None
            and self.client.is_connected
            and self.sent < SMTP_MESSAGES_PER_CONNECTION
            and time.monotonic() - self.used_at < SMTP_IDLE_SECONDS
        )

    def close(self, *, quit: bool = False) -> None:
        """Close the connection (saying QUIT first, briefly, when it is in a known state) and
        its loop."""
        client, self.client = self.client, None
        try:
            if client is not None and quit and client.is_connected:
                self.loop.run_until_complete(asyncio.wait_for(client.quit(), 2))
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            if client is not None:
                client.close()
            self.loop.run_until_complete(asyncio.sleep(0))  # the transport closes its socket
            self.loop.close()


def _close_all(connections: list[_Connection]) -> None:
    for connection in connections:
        connection.close(quit=True)


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
        self._kept: list[_Connection] = []  # connections idle between messages
        self._lock = threading.Lock()

    def send(self, mail: Mail, *, timeout: float = SMTP_DEADLINE_SECONDS) -> Delivery:
        """Send synchronously (the worker runs it on a thread of its own), `timeout` seconds in
        total whatever the server drips."""
        try:
            message = build_message(mail, self.sender)
        except Exception as exc:  # the standard library's header parser fails in many ways
            # Whatever way it fails, building the same message again fails the same way: the
            # delivery fails now, not at every lease's end for a day.
            log.warning("mail not built", recipients=len(mail.to), error_type=type(exc).__name__)
            return Delivery(False, UNBUILDABLE, permanent=True)
        connection, ok = self._take(), False
        try:
            refused, _ = connection.loop.run_until_complete(
                asyncio.wait_for(self._send(connection, message, timeout), timeout)
            )
            ok = True
        except aiosmtplib.SMTPResponseException as exc:
            permanent = _refusal_is_permanent(exc)
            self._failed(mail, exc, permanent)
            return Delivery(False, _refusal_reason(exc), permanent=permanent)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            permanent = _refusal_is_permanent(exc)
            self._failed(mail, exc, permanent)
            return Delivery(False, REFUSED if permanent else DEFERRED, permanent=permanent)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            self._failed(mail, exc, False)
            return Delivery(False, UNREACHABLE)
        finally:
            self._keep(connection, ok)
        log.info("mail sent", to=mail.to, subject=one_line(mail.subject), refused=sorted(refused))
        if refused:
            # The others have it: sent again, they would have it twice. Who was refused is logged.
            return Delivery(True, refused_some(len(refused), len(mail.to)))
        return Delivery(True)

    def close(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, []
        if kept:
            # On a thread of its own: the caller's thread may be running an event loop already.
            closing = threading.Thread(target=_close_all, args=(kept,))
            closing.start()
            closing.join()

    def _take(self) -> _Connection:
        """A kept connection still fit for a message, or a new one (not yet connected)."""
        stale = []
        with self._lock:
            while self._kept:
                connection = self._kept.pop()
                if connection.reusable:
                    break
                stale.append(connection)
            else:
                connection = _Connection()
        for old in stale:
            old.close(quit=True)
        return connection

    def _keep(self, connection: _Connection, ok: bool) -> None:
        """Keep a connection whose message went through for the next one; close any other (after
        a refusal, a timeout or a broken conversation its state is not worth trusting)."""
        if ok and connection.reusable:
            with self._lock:
                self._kept.append(connection)
            return
        connection.close(quit=ok)

    async def _send(
        self, connection: _Connection, message: EmailMessage, timeout: float
    ) -> tuple[dict[str, aiosmtplib.SMTPResponse], str]:
        # `timeout` of aiosmtplib bounds each step; the caller's `wait_for` bounds them all.
        client = connection.client
        if client is not None:
            client.timeout = timeout
            try:
                sent = await client.send_message(message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                # The server closed the kept connection while it was idle: once more, on a new one.
                client.close()
            else:
                connection.sent, connection.used_at = connection.sent + 1, time.monotonic()
                return sent
        connection.client = client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            start_tls=self.starttls,
            timeout=timeout,
        )
        await client.connect()
        sent = await client.send_message(message)
        connection.sent, connection.used_at = 1, time.monotonic()
        return sent

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

    def close(self) -> None:
        pass


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

"""The Mailer port: real SMTP delivery to a local server, and the log when SMTP is not configured."""

from __future__ import annotations

from tenantry.mail import Attachment, LogMailer, Mail, SmtpMailer, mailer_from_settings
from tenantry.settings import Settings


def test_a_message_with_an_attachment_reaches_a_real_smtp_server(smtp_server):
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
    delivery = mailer.send(
        Mail(
            to=["client@example.test"],
            subject="Your dashboard",
            text="Attached.",
            attachments=[Attachment("board.pdf", "application/pdf", b"%PDF-1.7 test")],
        )
    )
    assert delivery.delivered
    [message] = smtp_server.messages
    assert message["Subject"] == "Your dashboard"
    assert message["To"] == "client@example.test"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "board.pdf"
    assert attachment.get_content() == b"%PDF-1.7 test"


def test_an_unreachable_smtp_server_is_reported_not_raised():
    delivery = SmtpMailer("127.0.0.1", 1, "t@example.test").send(Mail(to=["a@b.test"], subject="s", text="t"))
    assert not delivery.delivered
    assert "could not be reached" in (delivery.reason or "")


def test_without_smtp_settings_mail_goes_to_the_log_and_says_so():
    mailer = mailer_from_settings(Settings(smtp_host=None, _env_file=None))  # type: ignore[call-arg]
    assert isinstance(mailer, LogMailer)
    delivery = mailer.send(Mail(to=["a@b.test"], subject="s", text="t"))
    assert (delivery.delivered, delivery.reason) == (False, LogMailer.REASON)


def test_an_smtp_conversation_ends_at_its_total_deadline_however_quick_each_answer():
    """A server that takes 0.4 s over every answer never lets one step time out; a conversation
    of seven steps still ends at the deadline of the whole."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def slow_server() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            answer, in_data = b"220 slow\r\n", False
            while answer and not stop.wait(0.4):
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                answer = b""
                for line in lines:
                    if in_data:
                        if line == b".\r\n":
                            answer, in_data = b"250 queued\r\n", False
                            break
                        continue
                    in_data = line.upper().startswith(b"DATA")
                    answer = b"354 go on\r\n" if in_data else b"250 OK\r\n"
                    if line.upper().startswith(b"QUIT"):
                        answer = b"221 bye\r\n"
                    break

    thread = threading.Thread(target=slow_server, daemon=True)
    thread.start()
    try:
        mailer = SmtpMailer(*listener.getsockname(), "t@example.test")
        started = time.monotonic()
        delivery = mailer.send(Mail(to=["a@b.test"], subject="s", text="t"), timeout=1.0)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert (delivery.delivered, delivery.permanent) == (False, False)
    assert elapsed < 2.0

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

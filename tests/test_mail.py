"""The Mailer port: real SMTP delivery to a local server, and the log when SMTP is not configured."""

from __future__ import annotations

from tenantry.mail import (
    DEFERRED,
    REFUSED,
    TOO_LARGE,
    Attachment,
    LogMailer,
    Mail,
    SmtpMailer,
    mailer_from_settings,
    refused_some,
)
from tenantry.settings import Settings
from tests.smtp import smtp_server_running


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
    mailer.close()
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


def _note(n: int) -> Mail:
    return Mail(to=[f"r{n}@client.test"], subject=f"Note {n}", text="t")


def test_messages_one_after_another_share_one_connection_until_the_mailer_is_closed(smtp_server):
    mailer = smtp_server.mailer
    try:
        assert all(mailer.send(_note(n)).delivered for n in range(3))
        assert smtp_server.greetings == 1
    finally:
        mailer.close()
    assert mailer.send(_note(3)).delivered  # closed: the next message opens a new connection
    mailer.close()
    assert smtp_server.greetings == 2
    assert [m["Subject"] for m in smtp_server.messages] == [f"Note {n}" for n in range(4)]


def test_a_kept_connection_the_server_closed_is_replaced_and_the_message_goes(smtp_server):
    import time

    mailer = smtp_server.mailer
    try:
        assert mailer.send(_note(0)).delivered
        smtp_server.drop_connections()
        time.sleep(0.2)
        assert mailer.send(_note(1)).delivered
    finally:
        mailer.close()
    assert smtp_server.greetings == 2
    assert [m["Subject"] for m in smtp_server.messages] == ["Note 0", "Note 1"]


def test_after_a_refusal_the_connection_is_not_kept(smtp_server):
    mailer = smtp_server.mailer
    smtp_server.rcpt_answers = ["550 5.1.1 No such user"]
    try:
        refused = mailer.send(_note(0))
        assert (refused.delivered, refused.permanent) == (False, True)
        assert mailer.send(_note(1)).delivered
    finally:
        mailer.close()
    assert smtp_server.greetings == 2
    assert [m["Subject"] for m in smtp_server.messages] == ["Note 1"]


def test_a_connection_idle_past_its_time_is_not_used_again(smtp_server, monkeypatch):
    from tenantry import mail as mail_module

    mailer = smtp_server.mailer
    try:
        assert mailer.send(_note(0)).delivered
        monkeypatch.setattr(mail_module, "SMTP_IDLE_SECONDS", 0.0)
        assert mailer.send(_note(1)).delivered
    finally:
        mailer.close()
    assert smtp_server.greetings == 2


class TestTheSenderNameIsOnlyAName:
    # A partner's `email_from_name` with the makings of addresses in it, and a letter that makes it
    # an encoded word: the From address stays the operator's.
    NAMES = [
        "Bänk Security <security@bank.test>",
        "Ünï x <ceo@bank.test>, other@bank.test",
        'É "q" <a@b.test>',
    ]

    def test_a_name_holding_addresses_does_not_change_the_from_address(self, smtp_server):
        mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
        for name in self.NAMES:
            delivery = mailer.send(Mail(to=["client@example.test"], subject="s", text="t", from_name=name))
            assert delivery.delivered, delivery.reason
        mailer.close()
        for name, message in zip(self.NAMES, smtp_server.messages, strict=True):
            (sender,) = message["From"].addresses
            assert (sender.display_name, sender.addr_spec) == (name, "tenantry@example.test")


def test_a_message_whose_headers_cannot_be_built_fails_at_once_for_good(smtp_server):
    # `a@[b.c` makes the standard library's header parser fail with AttributeError: no server could
    # ever take it, so it is not retried.
    mailer = SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@example.test")
    delivery = mailer.send(Mail(to=["a@[b.c"], subject="s", text="t"))
    mailer.close()
    assert (delivery.delivered, delivery.permanent) == (False, True)
    assert smtp_server.messages == []


class TestWhatTheServerRefusesForGoodIsNotRetried:
    """SMTP's 5yz answers are permanent (RFC 5321 §4.2.1) wherever they come: at MAIL FROM as at
    RCPT TO and DATA. A 4yz answer may mend."""

    def test_a_message_over_the_servers_size_limit_fails_at_once_and_says_why(self):
        with smtp_server_running(size_limit=2_000) as server:
            mailer = server.mailer
            big = Mail(
                to=["client@example.test"],
                subject="Your dashboard",
                text="Attached.",
                attachments=[Attachment("board.pdf", "application/pdf", b"%PDF" + b"x" * 10_000)],
            )
            try:
                too_big = mailer.send(big)
                small = mailer.send(_note(0))
            finally:
                mailer.close()
            assert (too_big.delivered, too_big.permanent, too_big.reason) == (False, True, TOO_LARGE)
            assert small.delivered
            assert [m["Subject"] for m in server.messages] == ["Note 0"]

    def test_a_sender_refused_with_a_5xx_answer_fails_at_once(self, smtp_server):
        smtp_server.mail_answers = ["550 5.7.1 Sender not allowed"]
        mailer = smtp_server.mailer
        try:
            refused = mailer.send(_note(0))
        finally:
            mailer.close()
        assert (refused.delivered, refused.permanent, refused.reason) == (False, True, REFUSED)
        assert smtp_server.messages == []

    def test_a_sender_deferred_with_a_4xx_answer_is_tried_again(self, smtp_server):
        smtp_server.mail_answers = ["451 4.3.0 Try again later"]
        mailer = smtp_server.mailer
        try:
            deferred = mailer.send(_note(0))
            again = mailer.send(_note(0))
        finally:
            mailer.close()
        assert (deferred.delivered, deferred.permanent, deferred.reason) == (False, False, DEFERRED)
        assert again.delivered
        assert len(smtp_server.messages) == 1


def test_a_message_refused_for_some_recipients_reaches_the_others_and_says_how_many_were_refused(
    smtp_server,
):
    smtp_server.rcpt_answers = ["250 OK", "550 5.1.1 No such user", "250 OK"]
    mailer = smtp_server.mailer
    to = ["a@client.test", "gone@client.test", "c@client.test"]
    try:
        delivery = mailer.send(Mail(to=to, subject="s", text="t"))
    finally:
        mailer.close()
    assert (delivery.delivered, delivery.reason) == (True, refused_some(1, 3))
    assert delivery.reason == "The mail server refused 1 of the 3 recipients; the others were sent it."
    assert smtp_server.envelopes == [["a@client.test", "c@client.test"]]

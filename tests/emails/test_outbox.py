"""E-mail goes through an outbox (SPEC §11, §12 "Errors and logs"): a request writes the message in
its own transaction and answers at once; the worker sends it after commit, retries what may mend
and gives up at once on what will not; no SMTP error text reaches a caller, and no invitation
link reaches the log or stays in the database."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from structlog.testing import capture_logs

from tenantry.app import create_app
from tenantry.db.models import Dashboard
from tenantry.db.worker_models import OutboxMail
from tenantry.mail import LogMailer, SmtpMailer
from tests.content import dashboard_in, make_client
from tests.factories import new_client
from tests.servers import free_port

QUICKLY = 5.0  # seconds; an SMTP server that never answers used to hold a request for 20


def outbox(database) -> list[OutboxMail]:
    with database.session() as db:
        return list(db.scalars(select(OutboxMail).order_by(OutboxMail.id)))


def email(http, partner, dashboard_id, *to, fmt="pdf"):
    return http.post(
        f"/api/1/dashboards/{dashboard_id}/email",
        json={"to": list(to), "format": fmt},
        headers=partner.headers,
    )


def invite(http, partner, client_id, address="invitee@client.test"):
    return http.post(
        f"/api/1/clients/{client_id}/users", json={"email": address, "name": "Ivy"}, headers=partner.headers
    )


def app_with(settings, clock, database, mailer) -> TestClient:
    return TestClient(create_app(settings, clock=clock, database=database, mailer=mailer))


class TestRequestsDoNotWaitForTheMailServer:
    def test_inviting_through_an_smtp_server_that_never_answers_answers_at_once(
        self, settings, clock, database, partner, silent_smtp
    ):
        with app_with(settings, clock, database, silent_smtp.mailer) as http:
            client_id = new_client(http, partner, "trial")
            started = time.monotonic()
            response = invite(http, partner, client_id)
            elapsed = time.monotonic() - started
            # The partner's other writes are not held up behind it either.
            started = time.monotonic()
            renamed = http.patch(
                f"/api/1/clients/{client_id}", json={"name": "Renamed"}, headers=partner.headers
            )
            patch_elapsed = time.monotonic() - started
        assert response.status_code == 201, response.text
        assert response.json()["invitation"] == {"queued": True, "delivered": False, "reason": None}
        assert elapsed < QUICKLY
        assert renamed.status_code == 200 and patch_elapsed < QUICKLY
        (queued,) = outbox(database)
        assert (queued.kind, queued.status, queued.recipients) == (
            "invitation",
            "pending",
            ["invitee@client.test"],
        )

    def test_a_partner_users_invitation_is_queued_the_same(
        self, settings, clock, database, partner, silent_smtp
    ):
        with app_with(settings, clock, database, silent_smtp.mailer) as http:
            started = time.monotonic()
            response = http.post(
                "/api/1/partner/users",
                json={"email": "ed@partner.test", "name": "Ed"},
                headers=partner.headers,
            )
        assert response.status_code == 201
        assert time.monotonic() - started < QUICKLY
        assert response.json()["invitation"]["queued"] is True

    def test_emailing_a_dashboard_through_an_smtp_server_that_never_answers_answers_at_once(
        self, settings, clock, database, partner, silent_smtp
    ):
        with app_with(settings, clock, database, silent_smtp.mailer) as http:
            _, _, dashboard_id = dashboard_in(http, partner, "active")
            started = time.monotonic()
            response = email(http, partner, dashboard_id, "boss@client.test")
            elapsed = time.monotonic() - started
        assert response.status_code == 202
        assert response.json() == {"queued": True, "delivered": False, "reason": None}
        assert elapsed < QUICKLY

    def test_the_mail_servers_own_words_never_reach_the_caller(self, settings, clock, database, partner):
        closed = free_port()
        with app_with(settings, clock, database, SmtpMailer("127.0.0.1", closed, "t@example.test")) as http:
            _, _, dashboard_id = dashboard_in(http, partner, "active")
            emailed = email(http, partner, dashboard_id, "boss@client.test")
            invited = invite(http, partner, make_client(http, partner, "trial"))
        for answer in (emailed.text, invited.text):
            assert "Errno" not in answer and str(closed) not in answer and "Connect" not in answer
        assert emailed.json()["reason"] is None
        assert invited.json()["invitation"]["reason"] is None

    def test_a_refused_request_queues_nothing(self, smtp_http, partner, clock, database):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "disabled", clock)
        assert email(smtp_http, partner, dashboard_id, "boss@client.test").status_code == 409
        assert outbox(database) == []


class TestTheWorkerSends:
    def test_a_queued_dashboard_is_sent_after_commit_and_keeps_no_body(
        self, smtp_http, smtp_server, partner, make_worker, database
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        email(smtp_http, partner, dashboard_id, "boss@client.test", "cfo@client.test", fmt="png")
        assert smtp_server.messages == []
        assert make_worker(smtp_server.mailer).run_mails() == 1
        (message,) = smtp_server.messages
        assert smtp_server.envelopes == [["boss@client.test", "cfo@client.test"]]
        assert [p.get_content_type() for p in message.iter_attachments()] == ["image/png"]
        (sent,) = outbox(database)
        assert (sent.status, sent.attempts, sent.text, sent.attachment) == ("delivered", 1, "", None)
        assert make_worker(smtp_server.mailer).run_mails() == 0

    def test_a_transient_refusal_is_retried_with_backoff(
        self, smtp_http, smtp_server, partner, make_worker, database, clock
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        email(smtp_http, partner, dashboard_id, "boss@client.test")
        smtp_server.rcpt_answers = ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
        worker = make_worker(smtp_server.mailer)
        worker.run_mails()
        (waiting,) = outbox(database)
        assert (waiting.status, waiting.attempts) == ("pending", 1)
        assert waiting.next_attempt_at == clock.now() + timedelta(seconds=30)
        assert waiting.last_error == "The mail server did not take the message for now."
        clock.advance(seconds=29)
        assert worker.run_mails() == 0
        clock.advance(seconds=1)
        worker.run_mails()
        clock.advance(seconds=60)
        worker.run_mails()
        (sent,) = outbox(database)
        assert (sent.status, sent.attempts) == ("delivered", 3)
        assert len(smtp_server.messages) == 1

    @pytest.mark.parametrize(
        ("step", "answer", "reason"),
        [
            (
                "rcpt_answers",
                "550 5.1.1 secret-internal-relay-detail",
                "The mail server refused the message.",
            ),
            (
                "mail_answers",
                "552 5.3.4 Message size exceeds fixed limit",
                "The message is larger than the mail server accepts.",
            ),
        ],
        ids=["a recipient refused for good", "the sender refused for good, the message too large"],
    )
    def test_a_message_refused_for_good_fails_at_once_and_is_never_retried(
        self, smtp_http, smtp_server, partner, make_worker, database, clock, step, answer, reason
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        email(smtp_http, partner, dashboard_id, "nobody@client.test")
        setattr(smtp_server, step, [answer])
        worker = make_worker(smtp_server.mailer)
        worker.run_mails()
        (failed,) = outbox(database)
        assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 1, None)
        assert failed.last_error == reason
        assert (failed.text, failed.attachment) == ("", None)
        clock.advance(hours=2)
        assert worker.run_mails() == 0

    def test_a_message_refused_for_one_recipient_is_delivered_to_the_others_and_says_so(
        self, smtp_http, smtp_server, partner, make_worker, database
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        email(smtp_http, partner, dashboard_id, "boss@client.test", "gone@client.test")
        smtp_server.rcpt_answers = ["250 OK", "550 5.1.1 secret-internal-relay-detail"]
        worker = make_worker(smtp_server.mailer)
        worker.run_mails()
        (sent,) = outbox(database)
        assert (sent.status, sent.attempts, sent.next_attempt_at) == ("delivered", 1, None)
        assert sent.last_error == "The mail server refused 1 of the 2 recipients; the others were sent it."
        assert smtp_server.envelopes == [["boss@client.test"]]
        assert worker.run_mails() == 0  # the one who has it is not sent it twice

    def test_a_message_whose_header_cannot_be_built_fails_at_once(
        self, smtp_http, smtp_server, partner, make_worker, database
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        email(smtp_http, partner, dashboard_id, "boss@client.test")
        with database.session(write=True) as db:
            db.execute(update(OutboxMail).values(recipients=["boss@client.test\r\nBcc: victim@evil.test"]))
            db.commit()
        make_worker(smtp_server.mailer).run_mails()
        (failed,) = outbox(database)
        assert (failed.status, failed.attempts, failed.last_error) == (
            "failed",
            1,
            "The message could not be built.",
        )
        assert smtp_server.messages == []

    def test_a_message_is_given_up_24_hours_after_it_was_queued(
        self, smtp_http, smtp_server, partner, make_worker, database, clock
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        email(smtp_http, partner, dashboard_id, "boss@client.test")
        smtp_server.rcpt_answers = ["451 4.3.0 Try again later"] * 1000
        worker = make_worker(smtp_server.mailer)
        start = clock.now()
        while True:
            worker.run_mails()
            (row,) = outbox(database)
            if row.next_attempt_at is None:
                break
            clock.set(row.next_attempt_at)
        assert row.status == "failed"
        assert row.last_attempt_at == start + timedelta(hours=24)
        assert 20 < row.attempts < 60

    def test_a_dashboard_name_with_line_breaks_makes_a_one_line_subject(
        self, smtp_http, smtp_server, partner, make_worker, database
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        with database.session(write=True) as db:
            db.execute(update(Dashboard).values(name="Q1\r\nBcc: victim@evil.test"))
            db.commit()
        response = email(smtp_http, partner, dashboard_id, "boss@client.test")
        assert response.status_code == 202, response.text
        make_worker(smtp_server.mailer).run_mails()
        (message,) = smtp_server.messages
        assert message["Subject"] == "Dashboard: Q1 Bcc: victim@evil.test"
        assert message["Bcc"] is None
        assert smtp_server.envelopes == [["boss@client.test"]]

    @pytest.mark.parametrize(
        "address",
        [
            "a@b.test\r\nBcc: victim@evil.test",
            "a@b.test\nx",
            "a@b.test,c@d.test",
            # Quoted, commented or bracketed parts, which the header parser reads as other
            # addresses or fails on (the message could never be built).
            "a@[b.c",
            '"foo@x.test',
            'bar"@evil.test',
            "a(b)@c.test",
            "name:a@b.test",
        ],
    )
    def test_a_recipient_with_a_line_break_or_a_second_address_is_refused(
        self, smtp_http, partner, address, database
    ):
        _, _, dashboard_id = dashboard_in(smtp_http, partner, "active")
        response = email(smtp_http, partner, dashboard_id, address)
        assert response.status_code == 422
        assert outbox(database) == []


class TestInvitationLinksAreSecrets:
    def test_without_smtp_the_log_shows_the_invitation_with_its_link_redacted(self, http, partner, database):
        client_id = new_client(http, partner, "trial")
        with capture_logs() as logs:
            response = invite(http, partner, client_id)
        assert response.json()["invitation"] == {
            "queued": False,
            "delivered": False,
            "reason": LogMailer.REASON,
        }
        (logged,) = [entry for entry in logs if entry["event"].startswith("mail not sent")]
        assert "/invite/[redacted]" in logged["text"]
        assert not re.search(r"/invite/(?!\[redacted\])", repr(logs))
        (row,) = outbox(database)
        assert (row.status, row.text) == ("logged", "")

    def test_a_sent_invitation_keeps_no_link_and_the_worker_logs_none(
        self, smtp_http, smtp_server, partner, make_worker, database
    ):
        client_id = new_client(smtp_http, partner, "trial")
        invite(smtp_http, partner, client_id)
        with capture_logs() as logs:
            make_worker(smtp_server.mailer).run_mails()
        (message,) = smtp_server.messages
        token = re.search(r"/invite/(\S+)", message.get_body(("plain",)).get_content()).group(1)
        assert token not in repr(logs)
        (row,) = outbox(database)
        assert (row.status, row.text) == ("delivered", "")
        with database.session() as db:
            assert db.scalar(select(OutboxMail.id).where(OutboxMail.text.contains(token))) is None

    def test_a_claimed_invitation_shows_no_link_where_a_traceback_would_print_it(
        self, smtp_http, smtp_server, partner, database, clock
    ):
        from tenantry.emails.service import claim_mail_jobs

        invite(smtp_http, partner, new_client(smtp_http, partner, "trial"))
        with database.session(write=True) as db:
            (job,) = claim_mail_jobs(db, "w", clock.now(), timedelta(seconds=60), 5)
            db.rollback()
        assert "/invite/" in job.mail.text
        assert "/invite/" not in repr(job)

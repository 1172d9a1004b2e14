"""Settling one attempt of an outbox message (`emails.settle_mail`): only the worker holding the
message's lease may record it, and a message that ended keeps no body."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tenantry.db.worker_models import OutboxMail
from tenantry.emails import service as emails
from tenantry.mail import Attachment, Delivery, Mail
from tests.queries import statements_sent

WORKER, OTHER = "worker-a", "worker-b"


class _Smtp:
    delivers = True


def _held(database, clock, partner_id) -> emails.MailJob:
    """A report's e-mail, written leased to WORKER (as a run leaves it for itself to send)."""
    mail = Mail(
        to=["boss@client.test"],
        subject="Sales",
        text="The report is attached.",
        html="<p>The report is attached.</p>",
        attachments=[Attachment("sales.pdf", "application/pdf", b"%PDF-1.7 bytes")],
    )
    now = clock.now()
    with database.session(write=True) as db:
        queued = emails.queue(
            db, _Smtp(), now, mail, partner_id=partner_id, kind="dashboard", sent_by="schedule:1",
            held_by=(WORKER, now + timedelta(minutes=5)),
        )  # fmt: skip
        db.commit()
    assert queued.mail_id is not None
    return emails.MailJob(queued.mail_id, partner_id, "dashboard", mail, now)


def _row(database, mail_id) -> OutboxMail:
    with database.session() as db:
        row = db.scalars(select(OutboxMail).where(OutboxMail.id == mail_id)).one()
        db.expunge(row)
        return row


def _settle(database, clock, job, worker_id, delivery, logged=False) -> str:
    with database.session(write=True) as db:
        status = emails.settle_mail(db, job, worker_id, clock.now(), delivery, logged)
        db.commit()
    return status


# What one attempt leaves, by how it ended (a transient failure is tried again later).
ENDINGS = [
    # delivery                                          logged  status       body kept
    (Delivery(True),                                     False,  "delivered", False),
    (Delivery(False, "no SMTP server"),                  True,   "logged",    False),
    (Delivery(False, "refused", permanent=True),         False,  "failed",    False),
    (Delivery(False, "try later"),                       False,  "pending",   True),
]  # fmt: skip


@pytest.mark.parametrize(("delivery", "logged", "status", "kept"), ENDINGS)
def test_an_attempt_by_the_lease_holder_is_recorded_and_gives_the_lease_back(
    database, clock, partner, delivery, logged, status, kept
):
    job = _held(database, clock, partner.id)
    clock.advance(seconds=3)
    assert _settle(database, clock, job, WORKER, delivery, logged) == status
    row = _row(database, job.id)
    assert (row.status, row.attempts, row.last_attempt_at) == (status, 1, clock.now())
    assert (row.lease_owner, row.lease_expires_at) == (None, None)
    assert row.last_error == delivery.reason
    assert row.delivered_at == (clock.now() if status == "delivered" else None)
    assert (row.next_attempt_at is not None) == (status == "pending")
    body = (row.text, row.html, row.attachment)
    if kept:
        assert body == (job.mail.text, job.mail.html, b"%PDF-1.7 bytes")
    else:
        assert body == ("", None, None)


@pytest.mark.parametrize(("delivery", "logged", "status", "kept"), ENDINGS)
def test_an_attempt_whose_lease_passed_to_another_worker_changes_nothing(
    database, clock, partner, delivery, logged, status, kept
):
    job = _held(database, clock, partner.id)
    with database.session(write=True) as db:  # the lease ran out and another worker claimed it
        db.execute(update(OutboxMail).values(lease_owner=OTHER))
        db.commit()
    before = _row(database, job.id)
    assert _settle(database, clock, job, WORKER, delivery, logged) == "lost"
    after = _row(database, job.id)
    columns = [c.key for c in OutboxMail.__table__.columns]
    assert {c: getattr(after, c) for c in columns} == {c: getattr(before, c) for c in columns}


def test_a_delivered_message_is_settled_in_one_statement(database, clock, partner):
    """The end of nearly every message: one UPDATE, no read of the row first."""
    job = _held(database, clock, partner.id)
    with statements_sent(database.engine) as sent:
        assert _settle(database, clock, job, WORKER, Delivery(True)) == "delivered"
    assert [s.split()[0].upper() for s in sent if not s.upper().startswith(("BEGIN", "COMMIT"))] == ["UPDATE"]

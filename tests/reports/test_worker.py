"""The worker's side of scheduled reports: the policy table at each slot (SPEC §4's row for
e-mailed dashboards), one run per slot, late slots, the real e-mail and the webhook events."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tenantry.dashboards.live import LiveCache
from tenantry.db.report_models import ReportRun, ReportSchedule
from tenantry.exports.service import Renderer
from tenantry.exports.typeset import Typesetter
from tests.content import WATERMARK, dashboard_in, pdf_text
from tests.links.test_filters_on_pages import DEFAULTED, board, flaky_rows
from tests.queries import statements_sent
from tests.reports.conftest import create

SLOT = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # the first 09:00 after the clock's start


@pytest.fixture
def smtp_worker(make_worker, smtp_server, settings):
    return make_worker(smtp_server.mailer, settings=settings)


def runs(http, partner, schedule_id):
    response = http.get(f"/api/1/schedules/{schedule_id}/runs", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def at_slot(clock, when: datetime = SLOT) -> None:
    clock.advance(seconds=(when - clock.now()).total_seconds())


# SPEC §4, "download or email dashboards (seed)": ✓wm, ✓, ✗, ✓, ✗.
POLICY = [
    # status           run        watermark  sent
    ("setup",          "sent",    True,      True),
    ("trial",          "sent",    False,     True),
    ("active",         "sent",    False,     True),
    ("trial_expired",  "skipped", False,     False),
    ("disabled",       "skipped", False,     False),
]  # fmt: skip


@pytest.mark.parametrize(("status", "run_status", "watermarked", "sent"), POLICY)
def test_at_each_slot_the_status_decides(
    http, partner, clock, smtp_server, smtp_worker, status, run_status, watermarked, sent
):
    _, _, dashboard_id = dashboard_in(http, partner, status, clock)
    start = clock.now()
    schedule_id = create(
        http, partner.headers, dashboard_id, time=(start + timedelta(hours=1)).strftime("%H:%M")
    ).json()["id"]
    clock.advance(hours=1)
    assert smtp_worker.run_reports() == 1
    (run,) = runs(http, partner, schedule_id)
    assert run["status"] == run_status
    assert run["late"] is False
    assert run["watermark"] is watermarked
    if sent:
        (message,) = smtp_server.messages
        (attachment,) = list(message.iter_attachments())
        assert (WATERMARK in pdf_text(attachment.get_content())) is watermarked
        assert run["recipients"] == ["boss@client.test"] and run["reason"] is None
    else:
        assert smtp_server.messages == []
        assert run["recipients"] == []
        words = "in an expired trial" if status == "trial_expired" else "disabled"
        assert run["reason"] == f"Dashboards cannot be downloaded or e-mailed while the client is {words}."


def test_nothing_runs_before_the_slot(http, partner, clock, smtp_worker, active_dashboard):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock, SLOT - timedelta(seconds=1))
    assert smtp_worker.run_reports() == 0
    assert runs(http, partner, schedule_id) == []


def test_the_email_arrives_with_the_pdf_a_text_and_an_html_part(
    http, partner, clock, smtp_server, smtp_worker, active_dashboard
):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    smtp_worker.run_reports()
    # Written to the outbox leased to the worker, which sends it in the same job: nothing is left.
    assert smtp_worker.run_mails() == 0
    (message,) = smtp_server.messages
    assert message["To"] == "boss@client.test"
    assert message["Subject"] == "Sales"  # the dashboard's name by default
    assert "Sales" in message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "/app/dashboards/" in html and "<html>" in html
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "sales-2026-03-11.pdf"
    assert "By month" in pdf_text(attachment.get_content())
    assert runs(http, partner, schedule_id)[0]["status"] == "sent"


def test_a_png_report_with_a_subject_of_its_own(
    http, partner, clock, smtp_server, smtp_worker, active_dashboard
):
    create(http, partner.headers, active_dashboard[1], format="png", subject="Weekly numbers")
    at_slot(clock)
    smtp_worker.run_reports()
    (message,) = smtp_server.messages
    assert message["Subject"] == "Weekly numbers"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_content().startswith(b"\x89PNG")


def test_named_users_get_it_at_their_address_of_the_day(
    http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
):
    from tests.content import client_key

    client_id, dashboard_id = active_dashboard
    user_id, _ = client_key(db, clock, partner, client_id, "member")
    create(http, partner.headers, dashboard_id, recipients={"user_ids": [user_id]})
    at_slot(clock)
    smtp_worker.run_reports()
    assert [m["To"] for m in smtp_server.messages] == ["member@client.test"]


def test_a_user_named_by_address_by_a_client_admin_stops_getting_reports_once_removed(
    http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
):
    """Else a client admin could add any address as a user, schedule to it, remove the user and
    go on mailing outside the account (SPEC §17: other addresses are for partner users)."""
    from tests.content import client_key
    from tests.factories import add_user

    client_id, dashboard_id = active_dashboard
    _, headers = client_key(db, clock, partner, client_id, "admin")
    db.commit()
    add_user(http, partner, client_id, "stayer@client.test", role="member")
    leaver = add_user(http, partner, client_id, "leaver@client.test", role="member")
    emails = ["stayer@client.test", "leaver@client.test"]
    schedule_id = create(http, headers, dashboard_id, recipients={"emails": emails}).json()["id"]
    removed = http.delete(f"/api/1/clients/{client_id}/users/{leaver['id']}", headers=partner.headers)
    assert removed.status_code == 204, removed.text
    at_slot(clock)
    smtp_worker.run_reports()
    assert [m["To"] for m in smtp_server.messages] == ["stayer@client.test"]
    (run,) = runs(http, partner, schedule_id)
    assert (run["status"], run["recipients"]) == ("sent", ["stayer@client.test"])


def test_a_client_admins_schedule_whose_only_user_left_is_skipped_and_says_so(
    http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
):
    from tests.content import client_key
    from tests.factories import add_user

    client_id, dashboard_id = active_dashboard
    _, headers = client_key(db, clock, partner, client_id, "admin")
    db.commit()
    leaver = add_user(http, partner, client_id, "leaver@client.test", role="member")
    schedule_id = create(http, headers, dashboard_id, recipients={"emails": ["leaver@client.test"]}).json()[
        "id"
    ]
    http.delete(f"/api/1/clients/{client_id}/users/{leaver['id']}", headers=partner.headers)
    at_slot(clock)
    smtp_worker.run_reports()
    assert smtp_server.messages == []
    (run,) = runs(http, partner, schedule_id)
    assert (run["status"], run["recipients"]) == ("skipped", [])
    assert run["reason"] == "No recipient is left: the users named have been removed."


def test_a_report_comes_from_the_product_name_when_the_brand_names_no_sender(
    http, partner, clock, smtp_server, smtp_worker, active_dashboard
):
    """As invitations, dashboard e-mails and notices do (SPEC §16, tests/branding/test_emails.py)."""
    from email.utils import parseaddr

    brand = {"product_name": "Acme Insights", "primary_color": "#aa3300"}  # no email_from_name
    assert http.patch("/api/1/partner/branding", json=brand, headers=partner.headers).status_code == 200
    create(http, partner.headers, active_dashboard[1])
    at_slot(clock)
    smtp_worker.run_reports()
    (message,) = smtp_server.messages
    assert parseaddr(message["From"])[0] == "Acme Insights", message["From"]


def test_a_report_comes_from_the_brands_sender_name(
    http, partner, clock, smtp_server, smtp_worker, active_dashboard
):
    from email.utils import parseaddr

    brand = {"product_name": "Acme Insights", "primary_color": "#aa3300", "email_from_name": "Acme Reports"}
    assert http.patch("/api/1/partner/branding", json=brand, headers=partner.headers).status_code == 200
    create(http, partner.headers, active_dashboard[1])
    at_slot(clock)
    smtp_worker.run_reports()
    (message,) = smtp_server.messages
    assert parseaddr(message["From"])[0] == "Acme Reports", message["From"]


def test_after_an_outage_only_the_latest_missed_slot_is_sent_and_marked_late(
    http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock, SLOT + timedelta(days=3, hours=2))  # 11, 12, 13 and 14 March at 09:00 have passed
    assert smtp_worker.run_reports() == 1
    assert smtp_worker.run_reports() == 0
    assert len(smtp_server.messages) == 1
    (run,) = runs(http, partner, schedule_id)
    assert run["slot"] == "2026-03-14T09:00:00Z"
    assert run["late"] is True
    db.expire_all()
    assert db.get(ReportSchedule, schedule_id).next_run_at == datetime(2026, 3, 15, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [{"subject": "Weekly numbers"}, {"format": "png"}, {"time": "09:00"}],
    ids=["subject", "format", "same time"],
)
def test_a_change_of_anything_but_the_timing_keeps_a_slot_that_has_come_and_not_run(
    http, partner, clock, smtp_server, smtp_worker, active_dashboard, change
):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock, SLOT + timedelta(minutes=5))  # the worker was busy at 09:00
    changed = http.patch(f"/api/1/schedules/{schedule_id}", json=change, headers=partner.headers)
    assert changed.status_code == 200, changed.text
    assert smtp_worker.run_reports() == 1
    assert [run["slot"] for run in runs(http, partner, schedule_id)] == ["2026-03-11T09:00:00Z"]
    assert len(smtp_server.messages) == 1


def test_a_new_timing_moves_the_next_slot_from_now(http, partner, clock, smtp_worker, active_dashboard):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock, SLOT + timedelta(minutes=5))
    changed = http.patch(f"/api/1/schedules/{schedule_id}", json={"time": "10:00"}, headers=partner.headers)
    assert changed.json()["next_run_at"] == "2026-03-11T10:00:00Z"
    assert smtp_worker.run_reports() == 0


def test_a_schedule_moved_later_after_a_worker_claimed_it_sends_nothing_before_its_new_slot(
    http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
):
    """The worker leased the due 09:00 slot; the schedule then moved to 10:00 before the worker's
    run took its row. The 10:00 report must not go out at 09:00."""
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock, SLOT + timedelta(seconds=1))
    jobs = smtp_worker._claim_reports(10)
    assert [job.key for job in jobs] == [schedule_id]
    moved = http.patch(f"/api/1/schedules/{schedule_id}", json={"time": "10:00"}, headers=partner.headers)
    assert moved.status_code == 200, moved.text
    jobs[0].run(60)
    assert runs(http, partner, schedule_id) == []
    assert smtp_server.messages == []
    db.expire_all()
    schedule = db.get(ReportSchedule, schedule_id)
    # Given back, still due at 10:00, and sent then.
    assert (schedule.lease_owner, schedule.next_run_at) == (None, SLOT + timedelta(hours=1))
    at_slot(clock, SLOT + timedelta(hours=1))
    assert smtp_worker.run_reports() == 1
    assert [r["slot"] for r in runs(http, partner, schedule_id)] == ["2026-03-11T10:00:00Z"]
    assert len(smtp_server.messages) == 1


def test_a_run_soon_after_its_slot_is_not_late(http, partner, clock, smtp_worker, active_dashboard):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock, SLOT + timedelta(minutes=2))
    smtp_worker.run_reports()
    assert runs(http, partner, schedule_id)[0]["late"] is False


def test_a_run_gives_its_schedule_back_and_moves_it_to_the_next_slot_in_one_write(
    http, partner, db, database, clock, smtp_server, smtp_worker, active_dashboard
):
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    with statements_sent(database.engine) as sent:
        assert smtp_worker.run_reports() == 1
    writes = [s for s in sent if s.lstrip().upper().startswith("UPDATE REPORT_SCHEDULES")]
    # The claim's lease, then the run's one write: no lease left, and the next day's slot.
    assert len(writes) == 2, writes
    db.expire_all()
    schedule = db.get(ReportSchedule, schedule_id)
    assert (schedule.lease_owner, schedule.lease_expires_at) == (None, None)
    assert schedule.next_run_at == SLOT + timedelta(days=1)
    assert len(smtp_server.messages) == 1


def test_a_run_reads_its_client_once_a_transaction_and_never_reads_back_its_own_run(
    http, partner, database, clock, smtp_server, smtp_worker, active_dashboard
):
    """The policy's status and the render need the same client: read once in the run's
    transaction, and on SQLite once more where the report is rendered ahead of it (the status it
    is sent under must be the one when the run commits). The run's row is what its INSERT
    returned."""
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    with statements_sent(database.engine) as sent:
        assert smtp_worker.run_reports() == 1
    reads = [" ".join(s.split()) for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in reads if " FROM clients " in s]) == (2 if database.is_sqlite else 1), reads
    assert [s for s in reads if " FROM report_runs" in s] == [], reads
    assert [r["status"] for r in runs(http, partner, schedule_id)] == ["sent"]
    assert len(smtp_server.messages) == 1


def test_a_slot_already_run_is_not_sent_again(
    http, partner, db, clock, smtp_server, smtp_worker, active_dashboard
):
    """As when a worker lost its lease mid-run and another took the schedule over."""
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    smtp_worker.run_reports()
    db.expire_all()
    schedule = db.get(ReportSchedule, schedule_id)
    schedule.next_run_at = SLOT  # as if the first worker's result were not yet written
    db.commit()
    assert smtp_worker.run_reports() == 1
    assert len(smtp_server.messages) == 1
    assert len(runs(http, partner, schedule_id)) == 1


def test_workers_racing_send_each_slot_once(
    http, partner, clock, database, smtp_server, make_worker, settings
):
    """Four workers, each with its own connections, claim the same due schedules at once."""
    _, _, dashboard_id = dashboard_in(http, partner, "active", clock)
    schedule_ids = [create(http, partner.headers, dashboard_id).json()["id"] for _ in range(12)]
    at_slot(clock)
    workers = [make_worker(smtp_server.mailer, settings=settings, batch=9) for _ in range(4)]
    barrier = threading.Barrier(len(workers))
    counts: list[int] = []

    def race(worker):
        barrier.wait()
        counts.append(worker.run_reports())

    threads = [threading.Thread(target=race, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == len(schedule_ids)
    assert workers[0].run_mails() == 0  # each worker sent the e-mails of the slots it ran
    assert len([m for m in smtp_server.messages if m["Subject"] == "Sales"]) == len(schedule_ids)
    with database.session() as db:
        slots = db.execute(select(ReportRun.schedule_id, ReportRun.slot)).all()
    assert sorted(slots) == sorted((i, SLOT) for i in schedule_ids)


def test_a_report_whose_worker_died_before_sending_is_sent_once_its_lease_runs_out(
    http, partner, clock, database, settings, smtp_server, smtp_worker, active_dashboard
):
    """The run and its e-mail commit together, the e-mail leased to the worker that wrote it; a
    worker that dies before sending leaves the e-mail to the outbox, which sends it later."""
    from tenantry.exports.service import new_renderer
    from tenantry.reports.service import run_schedule

    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    now = clock.now()
    with database.session(write=True) as db:  # what the dead worker did before it died
        schedule = db.get(ReportSchedule, schedule_id)
        held = ("dead-worker", now + timedelta(minutes=2))
        outcome = run_schedule(db, settings, smtp_server.mailer, new_renderer(), schedule, now, held)
        db.commit()
    assert outcome.status == "sent" and outcome.mail is not None
    assert smtp_worker.run_mails() == 0  # still leased to the dead worker
    assert smtp_server.messages == []
    clock.advance(minutes=2)
    assert smtp_worker.run_mails() == 1
    (message,) = smtp_server.messages
    assert message["Subject"] == "Sales"
    assert runs(http, partner, schedule_id)[0]["status"] == "sent"
    assert smtp_worker.run_reports() == 0  # the slot is not run again


class _BrokenTypesetter:
    def typeset(self, *args, **kwargs):
        raise RuntimeError("typst exploded with secret sk_live_123")


def test_a_failed_render_is_a_failed_run_and_a_report_failed_event(
    http, partner, clock, receiver, make_worker, smtp_server, settings, active_dashboard, caplog
):
    from tests.webhooks.test_delivery import subscribe

    subscribe(http, partner, receiver, events=["report.failed", "report.sent"])
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    worker = make_worker(
        smtp_server.mailer, settings=settings, renderer=Renderer(LiveCache(), _BrokenTypesetter())
    )
    worker.run_reports()
    (run,) = runs(http, partner, schedule_id)
    assert run["status"] == "failed"
    assert run["reason"] == "The dashboard could not be rendered."
    worker.run_once()
    assert [m for m in smtp_server.messages if m["Subject"] == "Sales"] == []  # only the status e-mails
    (event,) = [r.json for r in receiver.received]
    assert event["type"] == "report.failed"
    assert event["data"]["schedule_id"] == schedule_id
    assert event["data"]["client"]["id"] == event["data"]["client_id"]
    assert "sk_live_123" not in caplog.text


class _ChangingTypesetter:
    """Typesets as the real one does; while typesetting, changes the schedule through the API once
    (as a person might while a report renders) and keeps the answer."""

    def __init__(self, change) -> None:
        self.real, self.change, self.answers, self.formats = Typesetter(), change, [], []

    def typeset(self, fmt, **kwargs):
        self.formats.append(fmt)
        if not self.answers:
            self.answers.append(self.change())
        return self.real.typeset(fmt, **kwargs)


@pytest.mark.parametrize(
    ("change", "renders"),
    [
        ({"subject": "Renamed"}, ["pdf"]),  # the report made ahead still fits: it is sent as it is
        ({"format": "png"}, ["pdf", "png"]),  # it does not: the run renders it again
    ],
)
def test_a_schedule_can_be_changed_while_its_report_renders(
    http, partner, database, clock, smtp_server, make_worker, settings, active_dashboard, change, renders
):
    # On SQLite the report renders outside the run's write transaction: the change is neither kept
    # waiting for the render (SQLite has one writer) nor lost, and the run sends what it then finds.
    if not database.is_sqlite:
        pytest.skip("PostgreSQL renders in the run's transaction, which locks the schedule's row only")
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    typesetter = _ChangingTypesetter(
        lambda: (
            http.patch(f"/api/1/schedules/{schedule_id}", json=change, headers=partner.headers).status_code
        )
    )
    worker = make_worker(smtp_server.mailer, settings=settings, renderer=Renderer(LiveCache(), typesetter))
    assert worker.run_reports() == 1
    worker.run_mails()
    assert typesetter.answers == [200]
    assert typesetter.formats == renders
    (message,) = smtp_server.messages
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == ("image/png" if "format" in change else "application/pdf")
    assert message["Subject"] == change.get("subject", "Sales")
    assert [run["status"] for run in runs(http, partner, schedule_id)] == ["sent"]


def test_a_client_disabled_while_its_report_renders_on_sqlite_is_not_sent_it(
    http, partner, database, clock, smtp_server, make_worker, settings, active_dashboard
):
    if not database.is_sqlite:
        pytest.skip("PostgreSQL decides and renders in one transaction: the change comes after it")
    client_id, dashboard_id = active_dashboard
    schedule_id = create(http, partner.headers, dashboard_id).json()["id"]
    at_slot(clock)
    typesetter = _ChangingTypesetter(
        lambda: (
            http.patch(
                f"/api/1/clients/{client_id}", json={"status": "disabled"}, headers=partner.headers
            ).status_code
        )
    )
    worker = make_worker(smtp_server.mailer, settings=settings, renderer=Renderer(LiveCache(), typesetter))
    assert worker.run_reports() == 1
    worker.run_mails()
    assert typesetter.answers == [200]
    (run,) = runs(http, partner, schedule_id)
    assert (run["status"], run["recipients"]) == ("skipped", [])
    assert [m for m in smtp_server.messages if m["Subject"] == "Sales"] == []


def test_a_sent_report_reaches_the_webhook(http, partner, clock, receiver, smtp_worker, active_dashboard):
    from tests.webhooks.test_delivery import subscribe

    subscribe(http, partner, receiver, events=["report.sent"])
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    smtp_worker.run_once()
    smtp_worker.run_once()
    (event,) = [r.json for r in receiver.received]
    assert event["type"] == "report.sent"
    assert event["data"]["schedule_id"] == schedule_id
    assert event["data"]["slot"] == SLOT.isoformat()
    assert event["data"]["recipients"] == ["boss@client.test"]
    # Like every event, it carries the client as the API shows it (SPEC §9).
    client = event["data"]["client"]
    assert client["id"] == event["data"]["client_id"] and client["status"] == "active"


def test_a_skipped_slot_sends_no_event(http, partner, clock, receiver, smtp_worker):
    from tests.webhooks.test_delivery import subscribe

    subscribe(http, partner, receiver, events=["report.sent", "report.failed"])
    _, _, dashboard_id = dashboard_in(http, partner, "disabled", clock)
    create(http, partner.headers, dashboard_id)
    at_slot(clock)
    smtp_worker.run_once()
    smtp_worker.run_once()
    assert receiver.received == []


def test_a_mail_refused_for_good_makes_the_run_failed_with_an_event(
    http, partner, clock, receiver, smtp_server, smtp_worker, active_dashboard
):
    from tests.webhooks.test_delivery import subscribe

    subscribe(http, partner, receiver, events=["report.sent", "report.failed"])
    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    smtp_server.rcpt_answers = ["550 5.1.1 No such user"]
    smtp_worker.run_reports()
    (run,) = runs(http, partner, schedule_id)
    assert run["status"] == "failed"
    assert run["reason"] == "The mail server refused the message."
    smtp_worker.run_once()
    assert sorted(r.json["type"] for r in receiver.received) == ["report.failed", "report.sent"]


def test_without_an_smtp_server_a_report_is_written_to_the_log_once(
    http, partner, clock, database, make_worker, settings, active_dashboard, caplog
):
    from tenantry.db.worker_models import OutboxMail

    schedule_id = create(http, partner.headers, active_dashboard[1]).json()["id"]
    at_slot(clock)
    worker = make_worker(settings=settings)  # the LogMailer: no SMTP server is configured
    assert worker.run_reports() == 1
    worker.run_once()
    logged = [
        r
        for r in caplog.records
        if "mail not sent" in r.getMessage() and "scheduled report" in r.getMessage()
    ]
    assert len(logged) == 1
    with database.session() as db:
        (run,) = db.scalars(select(ReportRun).where(ReportRun.schedule_id == schedule_id)).all()
        mail = db.get(OutboxMail, run.mail_id)
        assert mail is not None
    assert (mail.status, mail.lease_owner) == ("logged", None)


def test_a_scheduled_report_never_mails_a_klip_whose_rows_could_not_be_read(
    http, partner, clock, make_worker, smtp_server, monkeypatch
):
    """A database fault while the report is drawn is the database's, not the dashboard's: no
    report goes out with a "could not be drawn" klip. On SQLite the run draws it again in its own
    transaction; on PostgreSQL the job crashes, and the slot runs again once the lease runs out.
    (The schedule clears both defaults with `""`: the report shows every row, 200.)"""
    dashboard_id = board(http, partner, filters=DEFAULTED)
    body = {
        "frequency": "daily",
        "time": (clock.now() + timedelta(hours=1)).strftime("%H:%M"),
        "format": "pdf",
        "recipients": {"emails": ["boss@client.test"]},
        "filters": {"period": "", "region": ""},
    }
    created = http.post(f"/api/1/dashboards/{dashboard_id}/schedules", json=body, headers=partner.headers)
    assert created.status_code == 201, created.text
    clock.advance(hours=1)
    worker = make_worker(smtp_server.mailer)
    left = flaky_rows(monkeypatch)
    with contextlib.suppress(OperationalError):
        worker.run_reports()
    assert left["left"] == 0
    if not smtp_server.messages:  # not sent this time: the next round after the lease sends it
        clock.advance(seconds=worker.lease.total_seconds() + 1)
        assert worker.run_reports() == 1
    assert smtp_server.messages
    for message in smtp_server.messages:
        (attachment,) = list(message.iter_attachments())
        text = pdf_text(attachment.get_content())
        assert "could not be drawn" not in text
        assert "200" in text.split()


def test_a_report_shows_the_partners_logo_from_the_public_address(
    http, partner, clock, smtp_server, smtp_worker, active_dashboard, settings
):
    from tests.branding.images import png

    put = http.put(
        "/api/1/partner/branding/logo",
        content=png(),
        headers={**partner.headers, "Content-Type": "image/png"},
    )
    assert put.status_code == 200, put.text
    create(http, partner.headers, active_dashboard[1])
    at_slot(clock)
    assert smtp_worker.run_reports() == 1
    html = smtp_server.messages[0].get_body(("html",)).get_content()
    assert f'src="{settings.base_url.rstrip("/")}{put.json()["logo_url"]}"' in html


class TestTheDailyLimitOfEMails:
    """A scheduled report's addresses outside the account count against the 50 recipients a day
    of dashboard e-mails of the user who scheduled it (SPEC §12), with the e-mails they send by
    hand: schedules cannot make the product an open relay."""

    def send_by_hand(self, http, partner, dashboard_id, count):
        """E-mail the dashboard to `count` addresses outside the account (20 a request at most):
        the last answer."""
        sent = 0
        while True:
            to = [f"someone{i}@elsewhere.test" for i in range(sent, min(count, sent + 20))]
            answer = http.post(
                f"/api/1/dashboards/{dashboard_id}/email", json={"to": to}, headers=partner.headers
            )
            sent += len(to)
            if sent == count or answer.status_code != 202:
                return answer

    def test_a_report_past_its_creators_daily_limit_is_skipped_with_the_reason_and_sends_nothing(
        self, http, partner, clock, smtp_server, smtp_worker, active_dashboard
    ):
        _, dashboard_id = active_dashboard
        assert self.send_by_hand(http, partner, dashboard_id, 45).status_code == 202
        outside = [f"list{i}@elsewhere.test" for i in range(6)]
        schedule_id = create(http, partner.headers, dashboard_id, recipients={"emails": outside}).json()["id"]
        at_slot(clock)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert run["status"] == "skipped"
        assert "past 50 recipients" in run["reason"] and "6 addresses outside the account" in run["reason"]
        smtp_worker.run_once()
        assert [m for m in smtp_server.messages if m["Subject"] == "Sales"] == []

    def test_the_addresses_a_report_sends_to_leave_less_for_its_creator_to_send_by_hand(
        self, http, partner, clock, smtp_worker, active_dashboard
    ):
        _, dashboard_id = active_dashboard
        outside = [f"list{i}@elsewhere.test" for i in range(20)]
        schedule_id = create(http, partner.headers, dashboard_id, recipients={"emails": outside}).json()["id"]
        at_slot(clock)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert run["status"] == "sent", run
        assert self.send_by_hand(http, partner, dashboard_id, 30).status_code == 202
        refused = self.send_by_hand(http, partner, dashboard_id, 1)
        assert refused.status_code == 429, refused.text
        assert refused.json()["code"] == "email_limit_reached"

    def test_users_of_the_account_are_not_counted(self, http, partner, clock, smtp_worker, active_dashboard):
        client_id, dashboard_id = active_dashboard
        assert self.send_by_hand(http, partner, dashboard_id, 50).status_code == 202
        body = {"email": "user@client.test", "name": "User", "role": "member"}
        user = http.post(f"/api/1/clients/{client_id}/users", json=body, headers=partner.headers)
        assert user.status_code == 201, user.text
        schedule_id = create(
            http, partner.headers, dashboard_id, recipients={"emails": ["USER@client.test"]}
        ).json()["id"]
        at_slot(clock)
        smtp_worker.run_reports()
        (run,) = runs(http, partner, schedule_id)
        assert (run["status"], run["recipients"]) == ("sent", ["user@client.test"])

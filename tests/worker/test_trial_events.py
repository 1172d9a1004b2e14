"""Trial events (SPEC §5): `client.trial_will_end` 3 days before the end and `client.trial_ended`
at the end, each exactly once per trial end, e-mailed to the partner's admins."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from tenantry.db.models import Event
from tenantry.mail import SmtpMailer
from tests.content import ACTIVE_RESOURCES, make_client
from tests.factories import set_status


def events(database, event_type):
    with database.session() as db:
        return db.scalars(select(Event).where(Event.type == event_type).order_by(Event.created_at)).all()


def count(database, event_type):
    return len(events(database, event_type))


class TestTrialWillEnd:
    def test_it_fires_once_three_days_before_the_end(self, http, partner, clock, database, worker):
        make_client(http, partner, "trial")
        worker.run_once()
        clock.advance(days=11, seconds=-1)
        worker.run_once()
        assert count(database, "client.trial_will_end") == 0
        clock.advance(seconds=1)
        worker.run_once()
        worker.run_once()
        clock.advance(days=1)
        worker.run_once()
        assert count(database, "client.trial_will_end") == 1
        data = events(database, "client.trial_will_end")[0].data
        assert data["client"]["trial"]["days_remaining"] == 3
        assert data["ends_at"] == (clock.now() + timedelta(days=2)).isoformat()

    def test_it_fires_at_once_when_the_trial_is_shorter_than_three_days(
        self, http, make_partner, clock, database, worker
    ):
        partner = make_partner(trial_days=2, dashboards=10, users=10, published_links=10)
        make_client(http, partner, "trial")
        worker.run_once()
        assert count(database, "client.trial_will_end") == 1

    def test_an_extension_gives_the_new_end_its_own_notice(self, http, partner, clock, database, worker):
        client_id = make_client(http, partner, "trial")
        clock.advance(days=12)
        worker.run_once()
        assert count(database, "client.trial_will_end") == 1
        extended = http.post(f"/api/1/clients/{client_id}/extend-trial", headers=partner.headers)
        assert extended.status_code == 200, extended.text
        worker.run_once()
        assert count(database, "client.trial_will_end") == 1
        clock.advance(days=13)  # the new end is 16 days away: 3 days left now
        worker.run_once()
        worker.run_once()
        assert count(database, "client.trial_will_end") == 2


class TestTrialEnded:
    def test_it_fires_once_at_the_end(self, http, partner, clock, database, worker):
        make_client(http, partner, "trial")
        clock.advance(days=14, seconds=-1)
        worker.run_once()
        assert count(database, "client.trial_ended") == 0
        clock.advance(seconds=1)
        worker.run_once()
        clock.advance(days=30)
        worker.run_once()
        assert count(database, "client.trial_ended") == 1

    def test_a_client_activated_before_the_end_gets_no_trial_ended(
        self, http, partner, clock, database, worker
    ):
        client_id = make_client(http, partner, "trial")
        clock.advance(days=5)
        set_status(http, partner, client_id, "active", resources=ACTIVE_RESOURCES)
        clock.advance(days=30)
        worker.run_once()
        assert count(database, "client.trial_ended") == 0
        assert count(database, "client.trial_will_end") == 0

    def test_racing_workers_write_each_notice_once(self, http, make_partner, clock, database, make_worker):
        partner = make_partner()  # an unlimited plan
        for _ in range(5):
            make_client(http, partner, "trial")
        clock.advance(days=15)
        workers = [make_worker() for _ in range(4)]
        threads = [threading.Thread(target=w.write_trial_events) for w in workers for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert count(database, "client.trial_ended") == 5


class TestMail:
    def test_the_partners_admins_are_mailed_each_status_change_and_trial_event(
        self, http, partner, clock, database, smtp_server, make_worker
    ):
        worker = make_worker(SmtpMailer(smtp_server.host, smtp_server.port, "tenantry@test"))
        client_id = make_client(http, partner, "trial")
        worker.run_once()
        clock.advance(days=11)
        worker.run_once()
        clock.advance(days=3)
        worker.run_once()
        set_status(http, partner, client_id, "active", resources=ACTIVE_RESOURCES)
        worker.run_once()
        worker.run_once()
        subjects = [m["Subject"] for m in smtp_server.messages]
        assert subjects == [
            "Client trial is now Trial",
            "The trial of Client trial ends in 3 days",
            "The trial of Client trial has ended",
            "Client trial is now Active",
        ]
        assert all(m["To"].startswith("admin") for m in smtp_server.messages)
        assert all("@partner.test" in m["To"] for m in smtp_server.messages)
